import { describe, expect, it } from 'vitest';
import { parseIntegerFlag } from '../../proxy/cli-number.ts';

const drain = { flag: '--drain-timeout-ms', what: 'a number of milliseconds', min: 0 };
const workers = { flag: '--workers', what: 'a number of worker processes', min: 1, max: 256 };

describe('parseIntegerFlag', () => {
  it('takes plain decimal integers in range', () => {
    expect(parseIntegerFlag('0', drain)).toBe(0);
    expect(parseIntegerFlag('15000', drain)).toBe(15_000);
    expect(parseIntegerFlag('256', workers)).toBe(256);
  });

  it.each(['abc', '', ' 5', '1e3', '0x10', '5.0', '10ms'])(
    'says what was given for %j and what is expected',
    (text) => {
      expect(() => parseIntegerFlag(text, drain)).toThrow(
        `--drain-timeout-ms: ${JSON.stringify(text)} is not a number of milliseconds (expected an integer ≥ 0)`,
      );
    },
  );

  it('says a number outside the range is out of range, with the range', () => {
    expect(() => parseIntegerFlag('0', workers)).toThrow(
      '--workers: "0" is out of range (expected an integer from 1 to 256)',
    );
    expect(() => parseIntegerFlag('-1', drain)).toThrow(
      '--drain-timeout-ms: "-1" is out of range (expected an integer ≥ 0)',
    );
    expect(() => parseIntegerFlag('99999999999999999999', drain)).toThrow('is out of range');
  });
});
