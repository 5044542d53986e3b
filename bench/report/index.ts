// The results of `skein bench`: summaries of rounds, the report files (JSON, Markdown, self-contained HTML) and the
// comparison of two reports behind `skein bench compare`. The data model is model.ts.
export { summarize } from './summarize.ts';
export { renderMarkdown } from './render-markdown.ts';
export { renderHtml } from './render-html.ts';
export { writeReport, type ReportFiles } from './write.ts';
export {
  compareReports,
  COMPARED_METRICS,
  DEFAULT_THRESHOLD_PCT,
  judge,
  type Comparison,
  type ComparisonRow,
  type CompareOptions,
  type Verdict,
} from './compare.ts';
export { COMPARE_HELP, runCompare, type CompareIo } from './compare-cli.ts';
export { readReport, parseReport, ReportInputError } from './read.ts';
export { PUBLISHED_FIGURES } from './published.ts';
export * from './model.ts';
