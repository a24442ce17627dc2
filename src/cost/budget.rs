//! Budgets (DESIGN §8): what a plan breaks of the environment's `budget`, in words with both
//! figures. `plan` and `apply` refuse such a plan unless `--allow-over-budget REASON`.

/// What a plan breaks of the environment's budget, in words with both figures.
pub fn problems(budget: &crate::config::Budget, cost: &crate::plan::CostSummary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(monthly) = budget.monthly
        && cost.after_monthly > monthly
    {
        out.push(format!(
            "the monthly total after this plan, ${:.2}, is above budget.monthly ${monthly:.2}",
            cost.after_monthly
        ));
    }
    if let Some(max) = budget.max_increase
        && cost.difference > max
    {
        out.push(format!(
            "this plan adds ${:.2}/month, above budget.max_increase ${max:.2}",
            cost.difference
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_budget_line_names_both_figures_and_none_is_fine() {
        let cost = crate::plan::CostSummary {
            after_monthly: 27.03,
            difference: 9.01,
            ..Default::default()
        };
        let both = crate::config::Budget {
            monthly: Some(20.0),
            max_increase: Some(5.0),
        };
        assert_eq!(
            problems(&both, &cost),
            [
                "the monthly total after this plan, $27.03, is above budget.monthly $20.00",
                "this plan adds $9.01/month, above budget.max_increase $5.00"
            ]
        );
        let roomy = crate::config::Budget {
            monthly: Some(100.0),
            max_increase: None,
        };
        assert!(problems(&roomy, &cost).is_empty());
    }
}
