// The rule a canary writes: a valid rule that compiles to a valid proxy route, taking only the requests whose
// Host names the service, split by the stage's weight, and all on one version at either end.
import { describe, expect, it } from 'vitest';
import { CANARY_RULE_PRIORITY, canaryRule } from '../../control/canary-rule.ts';
import { Rule, routeProblems, ruleToRoute } from '../../control/rules.ts';

const c = { service: 'pay.api', from: 'v1', to: 'v2' };

describe('the canary rule', () => {
  it('splits the service by the stage weight at the top priority, as a valid proxy route', () => {
    const rule = Rule.parse(canaryRule(c, 20));
    expect(routeProblems(rule)).toEqual([]);
    expect(rule).toMatchObject({ id: 'canary-pay.api', priority: CANARY_RULE_PRIORITY });
    expect(ruleToRoute(rule).weightedClusters).toEqual([
      { cluster: 'pay.api--v1', weight: 80 },
      { cluster: 'pay.api--v2', weight: 20 },
    ]);
  });

  it('takes the requests whose Host is the service, with or without a port, and no others', () => {
    const rule = Rule.parse(canaryRule(c, 5));
    const re = new RegExp(`^(?:${rule.conditions[0].value})$`);
    expect(rule.conditions[0]).toMatchObject({ type: 'header', field: 'host', operator: 'regex' });
    for (const host of ['pay.api', 'pay.api:8080']) expect(re.test(host)).toBe(true);
    for (const host of ['payxapi', 'pay.api.evil', 'other', 'pay.api:']) expect(re.test(host)).toBe(false);
  });

  it('sends everything to one version at 100% and at 0%', () => {
    expect(ruleToRoute(Rule.parse(canaryRule(c, 100))).cluster).toBe('pay.api--v2');
    expect(ruleToRoute(Rule.parse(canaryRule(c, 0))).cluster).toBe('pay.api--v1');
  });
});
