/** The items of a comma-separated argument ("a, b,,c" → a, b, c): trimmed, empty ones left out. */
export function commaList(text: string): string[] {
  return text
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
}
