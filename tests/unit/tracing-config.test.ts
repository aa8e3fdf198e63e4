/** When tracing is on (the standard OTEL_* variables), and that with it off every helper is a pass-through. */
import { describe, expect, it } from 'vitest';
import { contextOf, currentCarrier, inSpan, openSpan, pastSpan, samplerSpec, tracingOn, tracingWanted } from '../../src/config/tracing.ts';

describe('tracing configuration', () => {
  it('is wanted only with an OTLP endpoint, and not when turned off', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });

  it('passes through when off: no span, no carrier, the function still runs', async () => {
    expect(tracingOn()).toBe(false);
    expect(await inSpan('x', {}, async (span) => (span === undefined ? 'ran without a span' : 'a span'))).toBe('ran without a span');
    await expect(inSpan('x', {}, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(openSpan('x', {})).toBeUndefined();
    expect(currentCarrier()).toBeUndefined();
    expect(() => pastSpan('x', { startTime: Date.now() - 10 })).not.toThrow();
    // A malformed carrier is no error either.
    expect(() => contextOf({ traceparent: 'garbage' })).not.toThrow();
  });
});

describe('sampler settings', () => {
  it('reads OTEL_TRACES_SAMPLER and its argument, with the default for none or an unknown name', () => {
    expect(samplerSpec({})).toEqual({ root: 'always_on', ratio: 1, parentBased: true });
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })).toEqual({ root: 'traceidratio', ratio: 0.1, parentBased: true });
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })).toEqual({ root: 'traceidratio', ratio: 0.25, parentBased: false });
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'always_off' })).toEqual({ root: 'always_off', ratio: 1, parentBased: false });
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' })).toEqual({ root: 'always_off', ratio: 1, parentBased: true });
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'ALWAYS_ON' })).toEqual({ root: 'always_on', ratio: 1, parentBased: false });
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toEqual({ root: 'always_on', ratio: 1, parentBased: true });
    // A ratio out of range is clamped; one that is not a number means all.
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }).ratio).toBe(1);
    expect(samplerSpec({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }).ratio).toBe(1);
  });
});
