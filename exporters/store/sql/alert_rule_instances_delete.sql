DELETE FROM alert_instances WHERE rule_id = $rule_id
