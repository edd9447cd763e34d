import type { ComponentFactory } from './service.ts';

/** The parts of the service `serve` and `dev` run, in start order. */
export const serviceComponents: ComponentFactory[] = [];
