// Swagger UI over this service's /openapi.json. Started from a file, not an inline script: the page's
// Content-Security-Policy runs scripts of this origin only (api/apidocs.py).
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null, // the default badge asks validator.swagger.io: nothing leaves this origin
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
