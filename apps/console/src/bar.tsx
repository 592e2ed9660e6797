/** A labelled progress bar: a native <progress> (announced by screen readers) with its value as text. */
export function Bar(props: { label: string; value: number; max: number; text: string; warn?: boolean }) {
  const max = props.max > 0 ? props.max : 1;
  return (
    <div class="bar">
      <span class="bar-label">{props.label}</span>
      <progress
        class={props.warn ? "warn" : ""}
        value={Math.min(props.value, max)}
        max={max}
        aria-label={props.label}
        aria-valuetext={props.text}
      />
      <span class="bar-text">{props.text}</span>
    </div>
  );
}
