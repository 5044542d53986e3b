// Numbers given on the command line: the message names the flag, repeats what was given and says what is
// expected (`--drain-timeout-ms: "abc" is not a number of milliseconds (expected an integer ≥ 0)`), rather
// than leaving the schema to report "expected number, received NaN" for a field the user never wrote.

export interface IntegerFlag {
  /** `--workers` */
  readonly flag: string;
  /** What the number counts, for the message: "a number of milliseconds", "a number of workers". */
  readonly what: string;
  readonly min: number;
  readonly max?: number;
}

/** The integer `text` spells, within [min, max]; throws an Error whose message is meant for the user. */
export function parseIntegerFlag(text: string, spec: IntegerFlag): number {
  const expected = spec.max === undefined ? `an integer ≥ ${spec.min}` : `an integer from ${spec.min} to ${spec.max}`;
  // Digits only: Number() would also take "", " 5", "1e3", "0x10" and "5.0".
  if (!/^-?[0-9]+$/.test(text))
    throw new Error(`${spec.flag}: ${JSON.stringify(text)} is not ${spec.what} (expected ${expected})`);
  const n = Number(text);
  if (n < spec.min || (spec.max !== undefined && n > spec.max) || !Number.isSafeInteger(n))
    throw new Error(`${spec.flag}: ${JSON.stringify(text)} is out of range (expected ${expected})`);
  return n;
}
