/**
 * Switchyard's public API: the only barrel. queues/, workers/, examples and other packages
 * import from here; inside src/, modules import each other's files directly.
 */
export { defineAgentType, type AgentType, type AgentTypeInput, type PayloadOf, type ResultOf, type TaskDefaults, type TypeLimits, type Rate } from './model/agent-type.ts';
export { Catalogue, UnknownAgentTypeError, type AgentTypeDescription } from './model/catalogue.ts';
export { defineWorker, type BatchHandler, type BatchItem, type BatchResults, type Handler, type TaskContext, type WorkerDefinition } from './agent/worker-definition.ts';
export type { BatchOptions } from './agent/batch-handler.ts';
export { Agent, type AgentOptions } from './agent/agent.ts';
export { loadConfig, type Config } from './config/env.ts';
export { BREAKER_PRESETS, type BreakerPolicy, type BreakerSetting } from './model/breaker-policy.ts';
export { BreakerOpenError } from './breaker/breaker.ts';
export type { BreakerState, BreakerView } from './model/breaker-state.ts';
export type { Backoff, BackoffInput } from './model/backoff.ts';
export {
  SwitchyardError,
  ValidationError,
  FatalError,
  TimeoutError,
  RetryAfterError,
  RedisUnavailableError,
  NotReplicatedError,
  isSwitchyardError,
  isValidationError,
  isNonRetryable,
  isTimeoutError,
  isRedisUnavailable,
  type ErrorCode,
  type FieldIssue,
} from './model/errors.ts';
export { createLogger, type Logger } from './config/logger.ts';
export { startTracing, stopTracing, tracingOn } from './config/tracing.ts';
export { createRedis, type RedisConnection, type ConnectionRole } from './redis/connection.ts';
export { clusterUrl } from './config/redis-url.ts';
export { startLocalCluster, type LocalCluster } from './redis/local-cluster.ts';
export type { TaskView, TaskSummary, TaskState } from './task/view.ts';
export type { TaskRequest } from './model/task-request.ts';
export type { RoutingDecision, Strategy } from './model/routing.ts';
export { RUN_STATES, FINAL_RUN_STATES, NODE_STATES, COMPENSATION_STATES, type RunState, type FinalRunState, type NodeState } from './model/workflow-states.ts';
export {
  createClient,
  ApiError,
  WaitTimeoutError,
  FINAL_TASK_STATES,
  type ClientOptions,
  type SwitchyardClient,
  type TaskHandle,
  type TaskOptions,
  type TypedTaskView,
  type PayloadFor,
  type ResultFor,
  type WaitOptions,
  type ScheduleRequest,
  type SchedulePatch,
  type ScheduleView,
  type SchedulePage,
  type SignalReceipt,
} from './client/client.ts';
export type { EventFilter, EventStreamOptions, StreamedEvent } from './client/event-stream.ts';
export type { SwitchyardEvent, TaskEventState } from './events/event-log.ts';
export { verifyCallback, signCallback, SIGNATURE_HEADER, DELIVERY_HEADER, type Callback } from './model/callback.ts';

// Running Switchyard in your own process (examples, benchmarks, embedding): the API process with or
// without HTTP, the workflow engine alone (fixed router), the agent registry, queue names, and Redis helpers.
export { startApi, type ApiServer, type StartApiOptions } from './api/server.ts';
export { connectApi, buildApiServices, startApiChores, stopApiServices, type ApiConnections, type ApiServices } from './wiring/api-services.ts';
export { buildWorkflowServices, type WorkflowServices, type WorkflowServicesConfig, type WorkflowServicesOptions } from './wiring/workflow-services.ts';
export { Registry } from './registry/registry.ts';
export { queueName, poolLabel, type PoolRef } from './model/names.ts';
export { validateWorkflow } from './model/workflow-definition.ts';
export { waitForReady } from './redis/connection.ts';
export { deleteKeysUnder } from './redis/cleanup.ts';
export { spawnRedis, freePort } from './redis/embedded.ts';
