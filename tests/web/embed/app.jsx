// A platform's page as a svix-react user writes it: the portal in <AppPortal>, and a
// custom view with svix-react's hooks, both against postback. The test serves the page
// and /config.json (the portal link, the app-portal token, the theme).
import { createRoot } from "react-dom/client";
import { AppPortal, SvixProvider, useEndpoints, useEventTypes, useMessages } from "svix-react";

function Endpoints() {
  const endpoints = useEndpoints({ limit: 50 });
  if (endpoints.error) return <p data-testid="endpoints-error">{String(endpoints.error)}</p>;
  if (endpoints.loading || !endpoints.data) return <p>Loading endpoints</p>;
  return (
    <ul data-testid="endpoints">
      {endpoints.data.map((e) => <li key={e.id}>{e.url}</li>)}
    </ul>
  );
}

function Messages() {
  const messages = useMessages({ limit: 50 });
  if (messages.error) return <p data-testid="messages-error">{String(messages.error)}</p>;
  if (messages.loading || !messages.data) return <p>Loading messages</p>;
  return (
    <ul data-testid="messages">
      {messages.data.map((m) => <li key={m.id}>{m.eventType} {m.eventId}</li>)}
    </ul>
  );
}

function EventTypes() {
  const types = useEventTypes();
  if (types.error) return <p data-testid="event-types-error">{String(types.error)}</p>;
  if (types.loading || !types.data) return <p>Loading event types</p>;
  return (
    <ul data-testid="event-types">
      {types.data.map((t) => <li key={t.name}>{t.name}</li>)}
    </ul>
  );
}

function Page({ config }) {
  return (
    <>
      <SvixProvider token={config.token} appId={config.appId} options={{ serverUrl: config.serverUrl }}>
        <section aria-label="Hooks">
          <Endpoints />
          <Messages />
          <EventTypes />
        </section>
      </SvixProvider>
      <AppPortal url={config.portalUrl} fullSize {...config.theme} />
    </>
  );
}

fetch("/config.json")
  .then((answer) => answer.json())
  .then((config) => createRoot(document.getElementById("root")).render(<Page config={config} />));
