// Live refresh (progressive enhancement: the pages work without it). Every 10 s it reads the
// page's JSON endpoint with the same date range and updates the tables' figures in place.
(function () {
  "use strict";
  var api = document.body.getAttribute("data-api");
  var page = document.body.getAttribute("data-page");
  if (!api || !window.fetch) { return; }
  function set(el, text) { if (el && el.textContent !== String(text)) { el.textContent = String(text); } }
  function cell(tag, text, attr, value, scope) {
    var c = document.createElement(tag);
    if (attr) { c.setAttribute(attr, value); }
    if (scope) { c.setAttribute("scope", scope); }
    c.textContent = String(text);
    return c;
  }
  function rows(tableId, items, build, emptyText, cols) {
    var body = document.querySelector("#" + tableId + " tbody");
    if (!body) { return; }
    var frag = document.createDocumentFragment();
    if (!items.length && emptyText) {
      var tr = document.createElement("tr"); tr.className = "empty";
      var td = cell("td", emptyText); td.colSpan = cols; tr.appendChild(td); frag.appendChild(tr);
    }
    items.forEach(function (it) { frag.appendChild(build(it)); });
    body.replaceChildren(frag);
  }
  var render = {
    overview: function (d) {
      d.clinics.concat([d.total]).forEach(function (c) {
        var tr = document.querySelector('#network tr[data-clinic-id="' + c.clinic_id + '"]');
        if (!tr) { return; }
        Object.keys(c.kpis).forEach(function (k) { set(tr.querySelector('td[data-kpi="' + k + '"]'), c.kpis[k]); });
      });
      ((d.trends && d.trends.weeks) || []).forEach(function (w) {
        var tr = document.querySelector('#trends tr[data-week="' + w.week + '"]');
        if (!tr) { return; }
        Object.keys(w.kpis).forEach(function (k) { set(tr.querySelector('td[data-kpi="' + k + '"]'), w.kpis[k]); });
      });
    },
    clinic: function (d) {
      rows("sessions", d.sessions || [], function (x) {
        var tr = document.createElement("tr"); tr.setAttribute("data-session-id", x.session_id);
        tr.appendChild(cell("th", x.time, "data-field", "time", "row"));
        tr.appendChild(cell("td", x.service_type_text, "data-field", "service_type"));
        tr.appendChild(cell("td", x.scheduled, "data-field", "scheduled"));
        tr.appendChild(cell("td", x.attended, "data-field", "attended"));
        tr.appendChild(cell("td", x.absent, "data-field", "absent"));
        tr.appendChild(cell("td", x.not_recorded, "data-field", "not_recorded"));
        return tr;
      }, "No sessions today.", 6);
      rows("tracks", d.tracks, function (t) {
        var tr = document.createElement("tr"); tr.setAttribute("data-track-id", t.track_id);
        tr.appendChild(cell("th", t.track_code + (t.open ? "" : " (closed)"), "data-field", "track", "row"));
        tr.appendChild(cell("td", t.program_code, "data-field", "program"));
        tr.appendChild(cell("td", t.capacity, "data-field", "capacity"));
        tr.appendChild(cell("td", t.active, "data-field", "active"));
        tr.appendChild(cell("td", t.waitlisted, "data-field", "waitlisted"));
        return tr;
      }, "No tracks configured.", 5);
      rows("at-risk", d.at_risk, function (r) {
        var tr = document.createElement("tr"); tr.setAttribute("data-enrollment-id", r.enrollment_id);
        tr.appendChild(cell("th", r.patient_id, "data-field", "patient_id", "row"));
        tr.appendChild(cell("td", r.enrollment_id, "data-field", "enrollment_id"));
        tr.appendChild(cell("td", r.reasons_text, "data-field", "reasons"));
        tr.appendChild(cell("td", r.since_text, "data-field", "since"));
        return tr;
      }, "No patient is at risk.", 4);
      d.funnel.forEach(function (f) { set(document.querySelector('#funnel tr[data-status="' + f.status + '"] td[data-field="count"]'), f.count); });
    },
    billing: function (d) {
      Object.keys(d.flow).forEach(function (k) { set(document.querySelector('#flow td[data-kpi="' + k + '"]'), d.flow[k]); });
      (d.trends || []).forEach(function (w) {
        var tr = document.querySelector('#billing-trends tr[data-week="' + w.week + '"]');
        if (!tr) { return; }
        Object.keys(w.amounts).forEach(function (k) { set(tr.querySelector('td[data-kpi="' + k + '"]'), w.amounts[k]); });
      });
      rows("aging", d.aging, function (a) {
        var tr = document.createElement("tr"); tr.setAttribute("data-payer-id", a.payer_id);
        tr.appendChild(cell("th", a.payer_id, null, null, "row"));
        d.aging_buckets.concat(["total"]).forEach(function (b) { tr.appendChild(cell("td", a.buckets[b], "data-bucket", b)); });
        return tr;
      }, "No claim awaits a decision.", 6);
      rows("holds", d.holds, function (h) {
        var tr = document.createElement("tr"); tr.setAttribute("data-reason", h.reason);
        tr.appendChild(cell("th", h.reason, null, null, "row"));
        tr.appendChild(cell("td", h.count, "data-field", "count"));
        return tr;
      }, "No charge is on hold.", 2);
      rows("write-offs", d.write_offs || [], function (w) {
        var tr = document.createElement("tr"); tr.setAttribute("data-reason", w.reason);
        tr.appendChild(cell("th", w.label, null, null, "row"));
        tr.appendChild(cell("td", w.count, "data-field", "count"));
        tr.appendChild(cell("td", w.amount, "data-field", "amount"));
        return tr;
      }, "No write-off in this period.", 3);
      Object.keys(d.rates || {}).forEach(function (k) { set(document.querySelector('#rates td[data-kpi="' + k + '"]'), d.rates[k]); });
      if (!d.billing_error) {
        rows("denial-reasons", d.denial_reasons || [], function (r) {
          var tr = document.createElement("tr"); tr.setAttribute("data-code", r.code);
          tr.appendChild(cell("th", r.code, null, null, "row"));
          tr.appendChild(cell("td", r.denials, "data-field", "denials"));
          tr.appendChild(cell("td", r.amount, "data-field", "amount"));
          return tr;
        }, "No denial in this period.", 3);
      }
    },
    health: function (d) {
      d.streams.forEach(function (s) {
        var tr = document.querySelector('#events tr[data-stream="' + s.stream + '"]');
        if (!tr) { return; }
        set(tr.querySelector('td[data-field="events"]'), s.events_text);
        set(tr.querySelector('td[data-field="last_event_at"]'), s.last_event_text);
        set(tr.querySelector('td[data-field="pending"]'), s.pending_text);
      });
      if (!d.dead_letters_error && !d.dead_letters_hidden) {
        rows("dead-letters", d.dead_letters || [], function (x) {
          var tr = document.createElement("tr"); tr.setAttribute("data-consumer", x.consumer);
          tr.appendChild(cell("th", x.consumer, null, null, "row"));
          tr.appendChild(cell("td", x.count_text, "data-field", "count"));
          return tr;
        }, "No dead letters.", 2);
      }
    }
  };
  var status = document.getElementById("live-status");
  var timer = setInterval(function () {
    fetch(api + window.location.search, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { clearInterval(timer); set(status, "Your session ended: reload to sign in again."); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (d) {
        if (!d || !render[page]) { return; }
        render[page](d);
        set(status, "Figures refreshed at " + new Date().toLocaleTimeString() + "; they refresh every 10 seconds.");
      })
      .catch(function () { /* try again on the next tick */ });
  }, 10000);
}());
