# Only CI may apply prod: the apply workflow runs converge with CONVERGE_ACTOR=ci:<who merged>.
package main

import rego.v1

deny contains msg if {
	input.environment == "prod"
	input.operation != "plan"
	not startswith(input.actor, "ci:")
	msg := sprintf("only CI may %s prod (actor %s)", [input.operation, input.actor])
}
