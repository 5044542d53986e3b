// Reading a proxy's /metrics in tests: Prometheus text, one sample per line (`name{labels} value`).
import { httpGet } from './http-client.ts';

/** The admin listener's /metrics text. */
export async function scrape(adminUrl: string): Promise<string> {
  return (await httpGet(`${adminUrl}/metrics`)).body;
}

/** The sum of the samples of `name` whose label set holds every fragment given (`result="ok"`); 0 when none. */
export function sampleSum(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels.every((l) => line.includes(l))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
