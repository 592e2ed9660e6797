import { useEffect, useState } from "preact/hooks";
import { ApiError, api, storeKey, storedKey, type Quota } from "./api";
import { errorText } from "./format";
import { BatchesView } from "./views/batches-view";
import { ClusterView } from "./views/cluster-view";
import { PlaygroundView } from "./views/playground-view";
import { QueueView } from "./views/queue-view";

const VIEWS = [
  { id: "cluster", label: "Cluster" },
  { id: "queue", label: "Queue" },
  { id: "batches", label: "Batches and quota" },
  { id: "playground", label: "Playground" },
] as const;
type ViewId = (typeof VIEWS)[number]["id"];

function viewFromHash(): ViewId {
  const id = location.hash.replace(/^#\/?/, "");
  return VIEWS.find((v) => v.id === id)?.id ?? "cluster";
}

/** Signs in with an API key (checked against `GET /v1/quota`), then shows the four views. */
export function App() {
  const [tenant, setTenant] = useState<string | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const [view, setView] = useState<ViewId>(viewFromHash());

  useEffect(() => {
    // A new view moves the focus to its content, so keyboard and screen-reader users land there.
    const onHash = () => {
      setView(viewFromHash());
      requestAnimationFrame(() => document.getElementById("main")?.focus());
    };
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (storedKey() === null) return;
    api<Quota>("GET", "/v1/quota")
      .then((quota) => setTenant(quota.tenant))
      .catch(() => storeKey(null))
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    document.title = `${VIEWS.find((v) => v.id === view)?.label ?? ""} · Corral console`;
  }, [view]);

  if (checking) return <p class="center">Signing in…</p>;
  if (tenant === null) return <SignIn onSignedIn={setTenant} />;

  const signOut = () => {
    storeKey(null);
    setTenant(null);
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Corral</span>
        <nav aria-label="Views">
          <ul>
            {VIEWS.map((v) => (
              <li key={v.id}>
                <a href={`#${v.id}`} aria-current={v.id === view ? "page" : undefined}>
                  {v.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          Tenant <strong data-testid="tenant">{tenant}</strong>{" "}
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {view === "cluster" && <ClusterView admin={tenant === "admin"} />}
        {view === "queue" && <QueueView />}
        {view === "batches" && <BatchesView />}
        {view === "playground" && <PlaygroundView />}
      </main>
    </>
  );
}

function SignIn(props: { onSignedIn: (tenant: string) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    storeKey(key.trim());
    try {
      const quota = await api<Quota>("GET", "/v1/quota");
      props.onSignedIn(quota.tenant);
    } catch (caught) {
      storeKey(null);
      setError(
        caught instanceof ApiError && caught.status === 401
          ? "That API key was not accepted. Check it and try again."
          : `Could not sign in: ${errorText(caught)}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <h1>Corral console</h1>
      <form onSubmit={submit} aria-describedby="signin-help">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          autoFocus
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-invalid={error !== null}
          aria-describedby={error ? "signin-error" : undefined}
        />
        <button type="submit" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {error && (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p id="signin-help" class="muted">
        The key stays in this tab's session storage and is sent only to this server, as a bearer token. Closing the tab
        signs you out.
      </p>
    </main>
  );
}
