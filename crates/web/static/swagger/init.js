// Swagger UI, and what its page lacks for assistive technology once drawn: the title and the
// servers in landmarks (the operations are in its own <main>), and the tags' headings one
// level under the title (its <h1>, where it uses <h3>).
window.ui = SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#swagger-ui',
  onComplete: function () {
    var set = function (sel, attrs) {
      document.querySelectorAll(sel).forEach(function (e) {
        Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      });
    };
    set('.information-container', { role: 'banner' });
    set('.schemes-server-container', { role: 'region', 'aria-label': 'Servers and authorization' });
    set('h3.opblock-tag', { 'aria-level': '2' });
    set('section.models h4', { 'aria-level': '2' });
    set('select#servers', { 'aria-label': 'Servers' });
  } });
