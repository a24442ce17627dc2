# No canary step above 25% in prod: the first steps must stay small (100 is the end, not a step).
package main

import rego.v1

deny_large_canary_step contains {"msg": msg, "address": c.address} if {
	input.environment == "prod"
	some c in input.changes
	c.after.rollout.strategy == "canary"
	some step in c.after.rollout.steps
	is_number(step)
	step > 25
	step < 100
	msg := sprintf("canary step %v%% is above 25%% in prod", [step])
}
