import { status, type UntypedServiceImplementation, type ServerUnaryCall, type sendUnaryData, type ServerDuplexStream, type ServerReadableStream } from '@grpc/grpc-js';

const unimplemented = { code: status.UNIMPLEMENTED, details: 'not implemented by this server' };

/** Terminal, SubmitSoftwareInventory and RenewCertificate are declared but not served (SPEC §3). */
export function unimplementedHandlers(): UntypedServiceImplementation {
  return {
    Terminal: (call: ServerDuplexStream<unknown, unknown>) => {
      call.emit('error', unimplemented);
    },
    SubmitSoftwareInventory: (_call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      callback(unimplemented);
    },
    RenewCertificate: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      callback(unimplemented);
    },
    Register: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      callback(unimplemented);
    },
    Heartbeat: (call: ServerDuplexStream<unknown, unknown>) => {
      call.emit('error', unimplemented);
    },
  };
}
