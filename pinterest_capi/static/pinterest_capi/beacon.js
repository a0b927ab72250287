/* django-pinterest-capi: browser-made event ids for page_visit, search and view_category.
 *
 * For each <script type="application/json" data-pinterest-capi-event> rendered by
 * {% pinterest_browser_event %}, make a fresh event_id here, in the browser (so a page served
 * from a full-page cache never shares an id between visitors), call the Pinterest Tag with it
 * (when the page loaded the Tag) and POST the same id to the beacon, which records the server
 * event. The beacon URL comes from this script's data-beacon-url attribute.
 *
 * Also exposed as window.pinterestCapi.send({event_name, custom_data}) for events that happen
 * after load (a search in a single-page app); it returns the event_id it made.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var beaconUrl = script && script.getAttribute("data-beacon-url");

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
      hex.slice(20)].join("-");
  }

  function post(body) {
    var json = JSON.stringify(body);
    if (window.fetch) {
      return window.fetch(beaconUrl, {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: json,
        credentials: "same-origin",
        keepalive: true
      }).catch(function () { /* measurement only: never disturb the page */ });
    }
    if (navigator.sendBeacon) {
      navigator.sendBeacon(beaconUrl, new Blob([json], {type: "application/json"}));
    }
  }

  // The Tag's names of the three browser events (the template tag sends them; a hand-made
  // spec from window.pinterestCapi.send may not).
  var TAG_NAMES = {page_visit: "pagevisit", search: "search", view_category: "viewcategory"};

  function send(spec) {
    if (!beaconUrl || !spec || !TAG_NAMES[spec.event_name]) { return null; }
    var eventId = spec.event_name + "-" + uuid4();
    var tagEvent = spec.tag_event || TAG_NAMES[spec.event_name];
    var extra = spec.tag_params;
    if (!extra) {
      extra = {};
      var custom = spec.custom_data || {};
      if (custom.search_string) { extra.search_query = custom.search_string; }
    }
    if (typeof window.pintrk === "function") {
      var params = {};
      for (var key in extra) {
        if (Object.prototype.hasOwnProperty.call(extra, key)) { params[key] = extra[key]; }
      }
      params.event_id = eventId;
      window.pintrk("track", tagEvent, params);
    }
    var body = {event_name: spec.event_name, event_id: eventId,
      event_source_url: window.location.href.slice(0, 2000)};
    if (spec.custom_data && Object.keys(spec.custom_data).length) {
      body.custom_data = spec.custom_data;
    }
    post(body);
    return eventId;
  }

  function run() {
    var nodes = document.querySelectorAll('script[type="application/json"][data-pinterest-capi-event]');
    Array.prototype.forEach.call(nodes, function (node) {
      if (node.getAttribute("data-sent")) { return; }
      node.setAttribute("data-sent", "1");
      var spec;
      try { spec = JSON.parse(node.textContent); } catch (e) { return; }
      node.setAttribute("data-event-id", send(spec) || "");
    });
  }

  window.pinterestCapi = window.pinterestCapi || {};
  window.pinterestCapi.send = send;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
