// Starts GraphiQL against this server: queries and mutations as JSON over HTTP POST,
// subscriptions over WebSocket with the graphql-transport-ws protocol.
(function () {
  "use strict";

  var httpUrl = new URL("/graphql", window.location.href).href;

  var fetcher = GraphiQL.createFetcher({
    url: httpUrl,
    // The server answers with one JSON result; it does not stream @defer/@stream parts.
    enableIncrementalDelivery: false,
    // GraphiQL's bundled graphql-ws client opens this socket for each subscription and sends
    // the headers editor's values (an Authorization header, say) as its connection_init payload.
    subscriptionUrl: httpUrl.replace(/^http/, "ws"),
  });

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: "# Taskyard's health, per component.\n{\n  health {\n    status\n    components {\n      name\n      status\n      latencyMs\n    }\n  }\n}\n",
    })
  );
})();
