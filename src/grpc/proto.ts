import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
export const INGEST_PROTO = 'agent/v1/ingest.proto';
export const INGEST_SERVICE_NAME = 'agent.v1.IngestService';

/** How messages look in JavaScript: proto field names, defaults filled in, 64-bit integers as numbers. */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: GrpcObject | undefined;

export function loadIngestPackage(): GrpcObject {
  cached ??= loadPackageDefinition(loadSync(INGEST_PROTO, PROTO_LOADER_OPTIONS));
  return cached;
}

/** The generated client constructor for agent.v1.IngestService (used by tests, bench and tools). */
export function ingestServiceClient(): ServiceClientConstructor {
  const agent = loadIngestPackage()['agent'] as GrpcObject;
  const v1 = agent['v1'] as GrpcObject;
  return v1['IngestService'] as ServiceClientConstructor;
}

export function ingestServiceDefinition(): ServiceDefinition {
  return ingestServiceClient().service;
}
