import { ConfigError } from './config.ts';

/** Admin commands need only the database; they must not demand the TLS settings of `serve`. */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const url = env['DATABASE_URL'];
  if (url === undefined || url.trim() === '') throw new ConfigError(['DATABASE_URL is required (PostgreSQL connection string)']);
  return url;
}
