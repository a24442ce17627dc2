# No resource over $500/month; a plan that adds more than $100/month is worth a second look.
package main

import rego.v1

deny_expensive contains {"msg": msg, "address": c.address} if {
	some c in input.changes
	c.cost.after_monthly > 500
	msg := sprintf("costs $%.2f/month, over the $500 limit", [c.cost.after_monthly])
}

warn contains msg if {
	input.cost.difference > 100
	msg := sprintf("this plan adds $%.2f/month", [input.cost.difference])
}
