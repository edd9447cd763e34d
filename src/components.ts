import type { ComponentFactory } from './service.ts';
import { registrationComponent } from './grpc/register-handler.ts';
import { heartbeatComponent } from './heartbeat/heartbeat-component.ts';

/** The parts of the service `serve` and `dev` run, in start order. */
export const serviceComponents: ComponentFactory[] = [registrationComponent, heartbeatComponent];
