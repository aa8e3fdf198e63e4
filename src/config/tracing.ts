/**
 * OpenTelemetry traces, off unless the standard OTEL_* variables ask for them: OTEL_EXPORTER_OTLP_ENDPOINT
 * or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, OTEL_TRACES_EXPORTER not `none`, OTEL_SDK_DISABLED not `true`.
 * Then spans go to that OTLP/HTTP endpoint (JSON), named by OTEL_SERVICE_NAME (and OTEL_RESOURCE_ATTRIBUTES),
 * sampled as OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG say (default: parentbased_always_on).
 * Off, nothing is loaded and every helper below returns at its first line: no span objects, no context
 * switches (a no-op startActiveSpan still costs ~260 ns).
 *
 * Spans are made by hand with @opentelemetry/api: the HTTP request (api/trace-requests.ts), the enqueue,
 * the wait in the pool and each attempt (agent/processor.ts). A task carries its W3C trace context
 * (`traceparent`, `tracestate`) in its envelope, so the agent's spans, and the handler's own, join the
 * producer's trace. A malformed `traceparent` is ignored (a new trace starts), never an error.
 */
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanKind, type Tracer } from '@opentelemetry/api';

/** The W3C trace context a task carries (its envelope's `trace`). */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

let on = false;
let stopper: (() => Promise<void>) | undefined;

/** Whether spans are being recorded (startTracing ran with OTEL_* set). */
export const tracingOn = (): boolean => on;

/** Whether the environment asks for traces. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/** Which spans are kept, from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (SDK 3 alone does not read them). */
export interface SamplerSpec {
  /** Root spans: all, none, or this share of traces (by trace id). */
  root: 'always_on' | 'always_off' | 'traceidratio';
  ratio: number;
  /** A span with a parent follows its parent's decision (a caller's sampled flag, the enqueue's). */
  parentBased: boolean;
}

/** The standard sampler settings; the spec's default (parentbased_always_on) for none or an unknown name. */
export function samplerSpec(env: NodeJS.ProcessEnv = process.env): SamplerSpec {
  const name = (env.OTEL_TRACES_SAMPLER ?? '').trim().toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = env.OTEL_TRACES_SAMPLER_ARG !== undefined && Number.isFinite(arg) ? Math.min(1, Math.max(0, arg)) : 1;
  const parentBased = !['always_on', 'always_off', 'traceidratio'].includes(name);
  const root = name.endsWith('always_off') ? 'always_off' : name.endsWith('traceidratio') ? 'traceidratio' : 'always_on';
  return { root, ratio, parentBased };
}

/**
 * Starts exporting spans when the environment asks for it (the SDK is loaded only then). `service` is
 * the default service.name (OTEL_SERVICE_NAME wins). Returns whether tracing is on.
 */
export async function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (on || !tracingWanted(env)) return on;
  const [sdk, { OTLPTraceExporter }, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, res] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
  ]);
  const resource = res
    .resourceFromAttributes({ 'service.name': service })
    .merge(res.detectResources({ detectors: [res.envDetector] }));
  const spec = samplerSpec(env);
  const root = spec.root === 'always_off' ? new sdk.AlwaysOffSampler() : spec.root === 'traceidratio' ? new sdk.TraceIdRatioBasedSampler(spec.ratio) : new sdk.AlwaysOnSampler();
  const sampler = spec.parentBased ? new sdk.ParentBasedSampler({ root }) : root;
  const provider = new sdk.TracerProvider({ resource, sampler, spanProcessors: [new sdk.BatchSpanProcessor({ exporter: new OTLPTraceExporter() })] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  on = true;
  stopper = async () => {
    await provider.shutdown().catch(() => undefined); // flushes what is batched
    trace.disable();
    propagation.disable();
    context.disable();
  };
  return true;
}

/** Flushes and stops (on shutdown; a no-op when tracing is off). */
export async function stopTracing(): Promise<void> {
  const stop = stopper;
  [on, stopper] = [false, undefined];
  await stop?.();
}

/** The tracer, asked for on each use (one taken before a restart of tracing would stay bound to the old provider). */
const tracer = (): Tracer => trace.getTracer('switchyard');

/** The current context's trace context, to carry in a task (undefined when tracing is off or no span is active). */
export function currentCarrier(): TraceCarrier | undefined {
  if (!on || !trace.getSpan(context.active())) return undefined;
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? carrier : undefined;
}

/** The context a carrier (a task's envelope, an HTTP request's headers) continues; the root context for none or a malformed one. */
export const contextOf = (carrier: Readonly<Record<string, unknown>> | undefined): Context => (carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT);

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** When it began, if before now (epoch ms): a wait measured after the fact. */
  startTime?: number;
  /** The parent context (default: the active one). */
  parent?: Context;
}

/** The API's span options from ours (absent ones left out: exactOptionalPropertyTypes). */
const startOptions = (o: SpanOptions) => ({ ...(o.kind !== undefined ? { kind: o.kind } : {}), ...(o.attributes ? { attributes: o.attributes } : {}), ...(o.startTime ? { startTime: o.startTime } : {}) });

/**
 * Runs `fn` inside a new span made active (its children, and the handler's own spans, hang under it);
 * the span ends when `fn` settles, with an error status if it threw. With tracing off, just runs `fn`.
 */
export function inSpan<T>(name: string, o: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  const opened = openSpan(name, o);
  if (!opened) return fn(undefined);
  const { span } = opened;
  return context.with(opened.context, async () => {
    try {
      return await fn(span);
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A span that already happened: from `startTime` to now (a wait), under `parent`. No-op with tracing off. */
export function pastSpan(name: string, o: SpanOptions & { startTime: number }): void {
  if (!on) return;
  tracer().startSpan(name, startOptions(o), o.parent ?? context.active()).end();
}

/** Marks a span failed with what was thrown. */
function failed(span: Span, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  span.recordException(err instanceof Error ? err : message);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** A span ended by the caller, and the context it is active in (undefined with tracing off). */
export function openSpan(name: string, o: SpanOptions): { span: Span; context: Context } | undefined {
  if (!on) return undefined;
  const parent = o.parent ?? context.active();
  const span = tracer().startSpan(name, startOptions(o), parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs `fn` with `ctx` active (as it is, with no context given). */
export const within = <T>(ctx: Context | undefined, fn: () => T): T => (ctx ? context.with(ctx, fn) : fn());

/** Sets attributes on the active span (a no-op with tracing off or no span active). */
export function annotate(attributes: Attributes): void {
  if (on) trace.getSpan(context.active())?.setAttributes(attributes);
}
