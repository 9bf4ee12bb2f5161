// A platform's page as a svix-react user writes it: the portal in <AppPortal>, and a
// custom view with svix-react's hooks, both against postback. The test serves the page
// and /config.json (the portal link, the app-portal token, the theme).
import { createRoot } from "react-dom/client";
import { AppPortal, SvixProvider, useEndpoints, useEventTypes, useMessages } from "svix-react";

// One hook's answer as a list (or its error, or that it is loading).
function Listing({ testId, result, line }) {
  if (result.error) return <p data-testid={`${testId}-error`}>{String(result.error)}</p>;
  if (result.loading || !result.data) return <p>Loading {testId}</p>;
  return (
    <ul data-testid={testId}>
      {result.data.map((item) => <li key={item.id || item.name}>{line(item)}</li>)}
    </ul>
  );
}

function Hooks() {
  const endpoints = useEndpoints({ limit: 50 });
  const messages = useMessages({ limit: 50 });
  const eventTypes = useEventTypes();
  return (
    <section aria-label="Hooks">
      <Listing testId="endpoints" result={endpoints} line={(e) => e.url} />
      <Listing testId="messages" result={messages} line={(m) => `${m.eventType} ${m.eventId}`} />
      <Listing testId="event-types" result={eventTypes} line={(t) => t.name} />
    </section>
  );
}

function Page({ config }) {
  return (
    <>
      <SvixProvider token={config.token} appId={config.appId} options={{ serverUrl: config.serverUrl }}>
        <Hooks />
      </SvixProvider>
      <AppPortal url={config.portalUrl} fullSize {...config.theme} />
    </>
  );
}

fetch("/config.json")
  .then((answer) => answer.json())
  .then((config) => createRoot(document.getElementById("root")).render(<Page config={config} />));
