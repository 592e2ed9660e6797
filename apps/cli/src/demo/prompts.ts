import type { ChatMessage } from "@corral/shared";

/** One demo job: a completion prompt or a short chat. */
export type DemoPrompt = { label: string; prompt: string } | { label: string; messages: ChatMessage[] };

/** TinyStories-style openers, the kind of text stories260K was trained on. */
export const DEMO_PROMPTS: readonly DemoPrompt[] = [
  { label: "Once upon a time", prompt: "Once upon a time, there was a little girl named Lily." },
  { label: "Tom and the ball", prompt: "Tom had a big red ball. One day, he went to the park" },
  {
    label: "chat: a cat story",
    messages: [{ role: "user", content: "Tell me a story about a cat who finds a hat." }],
  },
  { label: "The little bird", prompt: "One day, a little bird wanted to fly high in the sky." },
  {
    label: "chat: a friendly dog",
    messages: [
      { role: "system", content: "You tell short, happy stories for small children." },
      { role: "user", content: "Write a story about a friendly dog and a boy named Ben." },
    ],
  },
  { label: "Sue and the cake", prompt: "Sue and her mom made a big cake. It was" },
  { label: "The brave fish", prompt: "There was a small fish who lived in a blue pond. He was" },
  {
    label: "chat: the lost toy",
    messages: [{ role: "user", content: "Once upon a time, a boy lost his favorite toy. What happened next?" }],
  },
];
