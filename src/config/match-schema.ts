// The named value condition every route rule on a request field shares (headers, cookies, query parameters):
// one shape — a name, at most one of exact | prefix | regex | present, and invert — so the schema, the docs and
// the compiled predicate (src/routing/match.ts valuePredicate) treat all three alike. Only how the name is
// normalised differs: header names are case-insensitive (lowercased here), cookie and parameter names are not.
import { z } from 'zod';

export const Regex = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'invalid regular expression' },
);

/** A condition on the value of the field `name` reads: exact, prefix, regex (anchored) or present; invert negates. */
function namedValueMatch(name: z.ZodType<string, string>) {
  return z
    .strictObject({
      name,
      exact: z.string().optional(),
      prefix: z.string().optional(),
      regex: Regex.optional(),
      /** true: the field is there (any value); false: it is absent. No value test at all: same as true. */
      present: z.boolean().optional(),
      invert: z.boolean().default(false),
    })
    .refine((h) => [h.exact, h.prefix, h.regex, h.present].filter((v) => v !== undefined).length <= 1, {
      message: 'use at most one of exact, prefix, regex, present',
    });
}

/** A request header; names compared case-insensitively; repeated fields joined with ", " (cookies with "; "). */
export const HeaderMatch = namedValueMatch(z.string().min(1).toLowerCase());
/** A cookie of the Cookie header, by its case-sensitive name; the first of a repeated name counts. */
export const CookieMatch = namedValueMatch(z.string().min(1));
/** A query parameter, by its case-sensitive (decoded) name; its value percent-decoded; the first of a repeated
 *  name counts. */
export const QueryParamMatch = namedValueMatch(z.string().min(1));

export type NamedValueMatchConfig = z.infer<typeof HeaderMatch>;
