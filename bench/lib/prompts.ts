const WHO = ["a little girl", "a small dog", "a brave boy", "an old cat", "a happy bird", "a big bear", "a tiny fish"];
const WHAT = ["found a ball", "went to the park", "saw a red car", "wanted a cake", "lost a toy", "met a friend"];

/** `count` short TinyStories-style prompts, the same on every run (so runs compare). */
export function storyPrompts(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, n) => {
    const i = n + offset;
    return `Once upon a time, ${WHO[i % WHO.length]} ${WHAT[Math.floor(i / WHO.length) % WHAT.length]}. Day ${i}:`;
  });
}
