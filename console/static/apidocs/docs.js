// Starts Swagger UI on /docs: the OpenAPI document's address is the container's data-spec-url.
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: container.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // no badge from validator.swagger.io: nothing leaves this host
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
