export interface TagInput {
  readonly key: string;
  readonly value: string;
}

/** Tags stored in an enrolment token's metadata (`{tags: [{key, value}]}`); anything malformed is ignored. */
export function tagsFromMetadata(metadata: unknown): TagInput[] {
  const tags = (metadata as { tags?: unknown } | null)?.tags;
  if (!Array.isArray(tags)) return [];
  return tags.filter(
    (t): t is TagInput => typeof t === 'object' && t !== null && typeof (t as TagInput).key === 'string' && typeof (t as TagInput).value === 'string' && (t as TagInput).key !== '' && (t as TagInput).value !== '',
  );
}

/**
 * Token tags merged with request tags (SPEC §5.2 step 3): the request wins; keys compare case-insensitively and
 * the winning tag keeps its own spelling.
 */
export function mergeTags(tokenTags: readonly TagInput[], requestTags: readonly TagInput[]): TagInput[] {
  const merged = new Map<string, TagInput>();
  for (const tag of [...tokenTags, ...requestTags]) {
    merged.set(tag.key.toLowerCase(), { key: tag.key, value: tag.value });
  }
  return [...merged.values()];
}
