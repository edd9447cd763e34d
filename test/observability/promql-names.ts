// Metric names referenced by a PromQL expression — enough to check dashboards and alerts against a live scrape.

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

/** Replaces Grafana variables ($__rate_interval, $namespace, ${datasource}) with values PromQL accepts. */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_)?interval|\$__range/g, '5m').replace(/\$\{?[a-zA-Z_]+\}?/g, 'x');
}

export function metricNames(expr: string): string[] {
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  rest = rest.replace(/\{[^}]*\}/g, ' ');
  rest = rest.replace(/\[[^\]]*\]/g, ' ');
  rest = rest.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of rest.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const name = match[1] ?? '';
    if (match[2] !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/** Parentheses, brackets and braces balance (outside strings): catches most hand-editing slips. */
export function balanced(expr: string): boolean {
  const open: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const char of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if (char === '(' || char === '[' || char === '{') open.push(char);
    else if (char in pairs && open.pop() !== pairs[char]) return false;
  }
  return open.length === 0;
}

/** Label names an expression matches on (`name{label="..."}`) per metric, and those it groups by (`by (a, b)`). */
export function labelUses(expr: string): { selectors: Array<{ metric: string; labels: string[] }>; grouping: string[] } {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const selectors = [...withoutStrings.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)].map((m) => ({
    metric: m[1] ?? '',
    labels: [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] ?? ''),
  }));
  const grouping = [...withoutStrings.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) =>
    (m[1] ?? '').split(',').map((l) => l.trim()).filter((l) => l !== ''),
  );
  return { selectors, grouping };
}
