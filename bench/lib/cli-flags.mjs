// `--name=value` flags of the bench's command-line tools (compare-http-builds.mjs, instructions.mjs).
// `usage(message)` is the tool's own: it prints the message with the tool's usage and exits.

/** {flag, count}: a flag's text (undefined when absent), and a whole number above 0 (`fallback` when absent). */
export function cliFlags(args, usage) {
  const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const count = (name, fallback) => {
    const text = flag(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) usage(`--${name} must be a whole number above 0, not ${JSON.stringify(text)}`);
    return value;
  };
  return { flag, count };
}
