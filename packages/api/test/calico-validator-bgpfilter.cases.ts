// The BGPFilter rows of libcalico-go's validator table (lib/validator/v3/validator_test.go
// at projectcalico/calico 87c1590, lines 2053-2452), transcribed as data. A bare
// BGPFilterRuleV4/V6 is put as the one exportV4/exportV6 rule of a BGPFilter; a bare
// BGPFilterOperation as the one operation of an Accept rule. After them: the rows of
// crd_validation_test.go's TestCRDValidation_BGPFilter, and rows for the CRD schema's
// own bounds (community pattern, priority range, item counts), which Calico enforces in
// the CRD rather than in Go.
import type { Row } from './calico-validator-policy.cases';

type Obj = Record<string, unknown>;
const v4 = (rule: Obj) => ({ name: 'test', spec: { exportV4: [rule] } });
const v6 = (rule: Obj) => ({ name: 'test', spec: { exportV6: [rule] } });
const op = (operation: Obj) => v4({ action: 'Accept', operations: [operation] });
const F = 'BGPFilter';

export const ROWS: Row[] = [
  [
    'should reject invalid BGPFilter rule-v4 interface - 1',
    F,
    v4({ interface: 'eth&', action: 'Reject' }),
    false,
  ],
  [
    'should reject invalid BGPFilter rule-v4 interface - 2',
    F,
    v4({ interface: '%face', action: 'Reject' }),
    false,
  ],
  [
    'should reject invalid BGPFilter rule-v4 interface - 3',
    F,
    v4({ interface: '"ace', action: 'Reject' }),
    false,
  ],
  [
    'should reject invalid BGPFilter rule-v6 interface - 1',
    F,
    v6({ interface: '$cali', action: 'Reject' }),
    false,
  ],
  [
    'should reject invalid BGPFilter rule-v6 interface - 2',
    F,
    v6({ interface: 'eth#', action: 'Reject' }),
    false,
  ],
  [
    'should reject invalid BGPFilter rule-v6 interface - 3',
    F,
    v6({ interface: '"face', action: 'Reject' }),
    false,
  ],
  [
    'should accept valid BGPFilter rule-v4 interface - 1',
    F,
    v4({
      interface: 'ethx',
      source: 'RemotePeers',
      cidr: '192.168.0.0/26',
      matchOperator: 'In',
      action: 'Accept',
    }),
    true,
  ],
  [
    'should accept valid BGPFilter rule-v4 interface - 2',
    F,
    v4({ interface: '*.calico', cidr: '192.168.0.0/26', matchOperator: 'In', action: 'Accept' }),
    true,
  ],
  [
    'should accept valid BGPFilter rule-v4 interface - 3',
    F,
    v4({ interface: 'eth*', source: 'RemotePeers', action: 'Accept' }),
    true,
  ],
  [
    'should accept valid BGPFilter rule-v6 interface - 1',
    F,
    v6({
      interface: 'ethx',
      source: 'RemotePeers',
      cidr: 'ffee::/64',
      matchOperator: 'In',
      action: 'Accept',
    }),
    true,
  ],
  [
    'should accept valid BGPFilter rule-v6 interface - 2',
    F,
    v6({ interface: '*.calico', cidr: 'ee2::dddd/128', matchOperator: 'In', action: 'Accept' }),
    true,
  ],
  [
    'should accept valid BGPFilter rule-v6 interface - 3',
    F,
    v6({ interface: '*.calico', source: 'RemotePeers', action: 'Accept' }),
    true,
  ],
  [
    'should accept BGPFilter with only rule-v4 interface - 1',
    F,
    v4({ interface: 'ethx', action: 'Accept' }),
    true,
  ],
  [
    'should accept BGPFilter with only rule-v4 interface - 2',
    F,
    v4({ interface: 'eth*', action: 'Accept' }),
    true,
  ],
  [
    'should accept BGPFilter with only rule-v6 interface - 1',
    F,
    v6({ interface: 'ethx.', action: 'Accept' }),
    true,
  ],
  [
    'should accept BGPFilter with only rule-v6 interface - 2',
    F,
    v6({ interface: '*.calico', action: 'Accept' }),
    true,
  ],
  [
    'should reject invalid BGPFilter rule-v4 source',
    F,
    v4({ source: 'xyz', action: 'Reject' }),
    false,
  ],
  [
    'should reject invalid BGPFilter rule-v6 source',
    F,
    v6({ source: 'xyz', action: 'Reject' }),
    false,
  ],
  [
    'should accept valid BGPFilter rule-v4 source',
    F,
    v4({ source: 'RemotePeers', cidr: '192.168.0.0/26', matchOperator: 'In', action: 'Reject' }),
    true,
  ],
  [
    'should accept valid BGPFilter rule-v6 source',
    F,
    v6({ source: 'RemotePeers', cidr: 'ffee::/64', matchOperator: 'In', action: 'Reject' }),
    true,
  ],
  [
    'should accept BGPFilter rule with only source set - 1',
    F,
    v4({ source: 'RemotePeers', action: 'Reject' }),
    true,
  ],
  [
    'should accept BGPFilter rule with only source set - 2',
    F,
    v6({ source: 'RemotePeers', action: 'Reject' }),
    true,
  ],
  [
    'should accept BGPFilter rule with valid IPv4 CIDR',
    F,
    v4({ cidr: '192.168.0.0/26', matchOperator: 'In', action: 'Accept' }),
    true,
  ],
  [
    'should accept BGPFilter rule with valid IPv6 CIDR',
    F,
    v6({ cidr: 'ffee::/64', matchOperator: 'In', action: 'Accept' }),
    true,
  ],
  [
    'should reject BGPFilter rule with invalid IPv4 CIDR - 1',
    F,
    v4({ cidr: 'x.x.x.x/26', matchOperator: 'In', action: 'Accept' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid IPv4 CIDR - 2',
    F,
    v4({ cidr: 'ffee::/64', matchOperator: 'In', action: 'Accept' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid IPv6 CIDR - 1',
    F,
    v6({ cidr: 'xxxx::/64', matchOperator: 'In', action: 'Accept' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid IPv6 CIDR - 2',
    F,
    v6({ cidr: '10.0.10.0/32', matchOperator: 'In', action: 'Accept' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid operator - 1',
    F,
    v4({ cidr: '10.0.10.0/32', matchOperator: 'fancyOperator', action: 'Accept' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid operator - 2',
    F,
    v6({ cidr: 'ffff::/128', matchOperator: 'fancyOperator', action: 'Accept' }),
    false,
  ],
  ...(['In', 'NotIn', 'Equal', 'NotEqual'] as const).flatMap((o): Row[] => [
    [
      `should accept BGPFilter rule with ${o} operator - 1`,
      F,
      v4({ cidr: '10.0.10.0/32', matchOperator: o, action: 'Accept' }),
      true,
    ],
    [
      `should accept BGPFilter rule with ${o} operator - 2`,
      F,
      v6({ cidr: 'ffff::/128', matchOperator: o, action: 'Accept' }),
      true,
    ],
  ]),
  [
    'should reject BGPFilter rule with no CIDR when MatchOperator is set - 1',
    F,
    v4({ matchOperator: 'NotEqual', action: 'Reject' }),
    false,
  ],
  [
    'should reject BGPFilter rule with no CIDR when MatchOperator is set - 2',
    F,
    v6({ matchOperator: 'NotEqual', action: 'Reject' }),
    false,
  ],
  [
    'should reject BGPFilter rule with no MatchOperator when CIDR is set - 1',
    F,
    v4({ cidr: '10.0.10.0/32', action: 'Reject' }),
    false,
  ],
  [
    'should reject BGPFilter rule with no MatchOperator when CIDR is set - 2',
    F,
    v6({ cidr: 'ffff::/128', action: 'Reject' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid Action - 1',
    F,
    v4({ cidr: '10.0.10.0/32', matchOperator: 'NotEqual', action: 'ActionX' }),
    false,
  ],
  [
    'should reject BGPFilter rule with invalid action - 2',
    F,
    v6({ cidr: 'ffff::/128', matchOperator: 'NotEqual', action: 'ActionX' }),
    false,
  ],
  ...(['Accept', 'Reject'] as const).flatMap((a): Row[] => [
    [
      `should accept BGPFilter rule with ${a} action - 1`,
      F,
      v4({ cidr: '10.0.10.0/32', matchOperator: 'NotEqual', action: a }),
      true,
    ],
    [
      `should accept BGPFilter rule with ${a} action - 2`,
      F,
      v6({ cidr: 'ffff::/128', matchOperator: 'NotEqual', action: a }),
      true,
    ],
  ]),
  [
    'should reject BGPFilter rule with no action - 1',
    F,
    v4({ matchOperator: 'NotEqual', cidr: '10.0.10.0/32' }),
    false,
  ],
  [
    'should reject BGPFilter rule with no action - 2',
    F,
    v6({ matchOperator: 'NotEqual', cidr: 'ffff::/128' }),
    false,
  ],
  ['should accept BGPFilter rule with just an action - 1', F, v4({ action: 'Reject' }), true],
  ['should accept BGPFilter rule with just an action - 2', F, v6({ action: 'Reject' }), true],
  [
    'should accept BGPFilterV4 rule with PrefixLength Min set',
    F,
    v4({ cidr: '10.0.10.0/24', matchOperator: 'In', action: 'Reject', prefixLength: { min: 25 } }),
    true,
  ],
  [
    'should accept BGPFilterV4 rule with PrefixLength Max set',
    F,
    v4({ cidr: '10.0.10.0/24', matchOperator: 'In', action: 'Reject', prefixLength: { max: 30 } }),
    true,
  ],
  [
    'should reject BGPFilterV4 rule with PrefixLength Max is out-of-bounds',
    F,
    v4({ cidr: '10.0.10.0/24', matchOperator: 'In', action: 'Reject', prefixLength: { max: 64 } }),
    false,
  ],
  [
    'should reject BGPFilterV4 rule with PrefixLength populated and CIDR missing',
    F,
    v4({ interface: 'ethx.', action: 'Reject', prefixLength: { min: 16 } }),
    false,
  ],
  [
    'should accept BGPFilterV6 rule with PrefixLength Min set',
    F,
    v6({ cidr: 'ffff::/128', matchOperator: 'In', action: 'Reject', prefixLength: { min: 65 } }),
    true,
  ],
  [
    'should accept BGPFilterV6 rule with PrefixLength Max set',
    F,
    v6({ cidr: 'ffff::/128', matchOperator: 'In', action: 'Reject', prefixLength: { max: 96 } }),
    true,
  ],
  [
    'should reject BGPFilterV6 rule with PrefixLength Min is negative',
    F,
    v6({ cidr: 'ffff::/128', matchOperator: 'In', action: 'Reject', prefixLength: { min: -16 } }),
    false,
  ],
  [
    'should reject BGPFilterV6 rule with PrefixLength populated and CIDR missing',
    F,
    v6({ interface: '*.calico', action: 'Reject', prefixLength: { min: 120 } }),
    false,
  ],
  // (API) BGPFilterOperation
  [
    'should accept BGPFilterOperation with AddCommunity set',
    F,
    op({ addCommunity: { value: '65000:100' } }),
    true,
  ],
  [
    'should accept BGPFilterOperation with PrependASPath set',
    F,
    op({ prependASPath: { prefix: [65000] } }),
    true,
  ],
  [
    'should accept BGPFilterOperation with SetPriority set',
    F,
    op({ setPriority: { value: 256 } }),
    true,
  ],
  ['should reject BGPFilterOperation with no fields set', F, op({}), false],
  [
    'should reject BGPFilterOperation with two fields set',
    F,
    op({ addCommunity: { value: '65000:100' }, setPriority: { value: 256 } }),
    false,
  ],
  [
    'should reject BGPFilterOperation with all fields set',
    F,
    op({
      addCommunity: { value: '65000:100' },
      prependASPath: { prefix: [65000] },
      setPriority: { value: 256 },
    }),
    false,
  ],
  // (API) BGPFilterRuleV4 with Operations
  [
    'should accept BGPFilterRuleV4 with single operation',
    F,
    v4({ action: 'Accept', operations: [{ setPriority: { value: 256 } }] }),
    true,
  ],
  [
    'should accept BGPFilterRuleV4 with multiple operations',
    F,
    v4({
      action: 'Accept',
      operations: [
        { addCommunity: { value: '65000:100' } },
        { prependASPath: { prefix: [65000] } },
      ],
    }),
    true,
  ],
  [
    'should reject BGPFilterRuleV4 with empty operation',
    F,
    v4({ action: 'Accept', operations: [{}] }),
    false,
  ],
  // crd_validation_test.go TestCRDValidation_BGPFilter
  ['V4 CIDR without matchOperator fails', F, v4({ cidr: '10.0.0.0/8', action: 'Accept' }), false],
  ['V4 matchOperator without CIDR fails', F, v4({ matchOperator: 'In', action: 'Accept' }), false],
  [
    'V4 prefixLength without CIDR fails',
    F,
    v4({ prefixLength: { min: 16 }, action: 'Accept' }),
    false,
  ],
  [
    'V4 both CIDR and matchOperator passes',
    F,
    v4({ cidr: '10.0.0.0/8', matchOperator: 'In', action: 'Accept' }),
    true,
  ],
  [
    'operation with no fields set fails minProperties',
    F,
    v4({ action: 'Accept', operations: [{}] }),
    false,
  ],
  [
    'operation with two fields set fails maxProperties',
    F,
    op({ addCommunity: { value: '65000:1' }, setPriority: { value: 100 } }),
    false,
  ],
  ['operation with single field passes', F, op({ setPriority: { value: 100 } }), true],
  // the CRD schema's bounds (bgpfilter.go kubebuilder markers and CEL rules)
  [
    'operations may only be used with action Accept',
    F,
    v4({ action: 'Reject', operations: [{ setPriority: { value: 100 } }] }),
    false,
  ],
  ['operations: minItems 1', F, v4({ action: 'Accept', operations: [] }), false],
  [
    'operations: maxItems 10',
    F,
    v4({ action: 'Accept', operations: Array(11).fill({ setPriority: { value: 5 } }) }),
    false,
  ],
  [
    'operations: 10 items',
    F,
    v4({ action: 'Accept', operations: Array(10).fill({ setPriority: { value: 5 } }) }),
    true,
  ],
  [
    'communities: a standard community',
    F,
    v4({ communities: { values: ['65535:0'] }, action: 'Reject' }),
    true,
  ],
  [
    'communities: a large community',
    F,
    v6({ communities: { values: ['4294967295:0:1'] }, action: 'Accept' }),
    true,
  ],
  [
    'communities: a standard part over 16 bits',
    F,
    v4({ communities: { values: ['65536:1'] }, action: 'Reject' }),
    false,
  ],
  [
    'communities: a large part over 32 bits',
    F,
    v4({ communities: { values: ['1:4294967296:1'] }, action: 'Reject' }),
    false,
  ],
  [
    'communities: a leading zero',
    F,
    v4({ communities: { values: ['065000:1'] }, action: 'Reject' }),
    false,
  ],
  ['communities: one part', F, v4({ communities: { values: ['65000'] }, action: 'Reject' }), false],
  [
    'communities: four parts',
    F,
    v4({ communities: { values: ['1:2:3:4'] }, action: 'Reject' }),
    false,
  ],
  [
    'communities: no value (minItems 1)',
    F,
    v4({ communities: { values: [] }, action: 'Reject' }),
    false,
  ],
  [
    'communities: two values (maxItems 1)',
    F,
    v4({ communities: { values: ['1:1', '2:2'] }, action: 'Reject' }),
    false,
  ],
  ['communities: values required', F, v4({ communities: {}, action: 'Reject' }), false],
  ['addCommunity: a large community', F, op({ addCommunity: { value: '65000:300:400' } }), true],
  ['addCommunity: not a community', F, op({ addCommunity: { value: 'no-export' } }), false],
  ['addCommunity: value required', F, op({ addCommunity: {} }), false],
  [
    'asPathPrefix: numbers and asdot strings',
    F,
    v4({ asPathPrefix: [65000, '65001', '1.10'], action: 'Accept' }),
    true,
  ],
  ['asPathPrefix: over 32 bits', F, v4({ asPathPrefix: [4294967296], action: 'Accept' }), false],
  ['asPathPrefix: not a number', F, v4({ asPathPrefix: ['AS65000'], action: 'Accept' }), false],
  ['priority: 1', F, v4({ priority: 1, action: 'Accept' }), true],
  ['priority: 2147483646', F, v6({ priority: 2147483646, action: 'Accept' }), true],
  ['priority: 0', F, v4({ priority: 0, action: 'Accept' }), false],
  ['priority: 2147483647', F, v4({ priority: 2147483647, action: 'Accept' }), false],
  ['setPriority: 0', F, op({ setPriority: { value: 0 } }), false],
  ['setPriority: value required', F, op({ setPriority: {} }), false],
  ['prependASPath: empty (minItems 1)', F, op({ prependASPath: { prefix: [] } }), false],
  [
    'prependASPath: 11 AS numbers (maxItems 10)',
    F,
    op({ prependASPath: { prefix: Array(11).fill(65000) } }),
    false,
  ],
  ['prependASPath: prefix required', F, op({ prependASPath: {} }), false],
];
