// Placeholder until the OpenTelemetry tracer lands (issue #6): enabling tracing is refused with a clear error.
import type { TracingConfig } from '../config/schema.ts';
import type { RequestTracer } from './types.ts';

export function createTracer(_cfg: TracingConfig, _serviceName: string): RequestTracer {
  throw new Error('telemetry.tracing is not available in this build yet');
}
