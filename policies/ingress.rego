# No public ingress on 22: no load balancer listener takes SSH.
package main

import rego.v1

deny_public_ssh contains {"msg": "no public ingress on port 22", "address": c.address} if {
	some c in input.changes
	c.kind == "aws.lb_listener"
	c.action in {"create", "update", "replace"}
	c.after.port == 22
}
