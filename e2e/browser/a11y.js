// Accessibility checks run in the page by browser.Accessibility. Written for Trellis: a small
// set of structural rules that server-rendered pages must keep, not a full WCAG audit.
// Evaluates to a list of {rule, element, message}.
(() => {
	const found = [];
	const describe = (el) => {
		let s = el.tagName.toLowerCase();
		if (el.id) s += '#' + el.id;
		const cls = (el.getAttribute('class') || '').trim().split(/\s+/).filter(Boolean);
		if (cls.length) s += '.' + cls.join('.');
		for (const a of ['name', 'href', 'data-kpi', 'data-clinic-id']) {
			if (el.hasAttribute(a)) s += `[${a}="${el.getAttribute(a)}"]`;
		}
		return s;
	};
	const report = (rule, el, message) => found.push({ rule, element: el ? describe(el) : '', message });
	const text = (s) => (s || '').replace(/\s+/g, ' ').trim();
	// Hidden from assistive technology: aria-hidden on it or an ancestor, or not rendered.
	const hidden = (el) => !!el.closest('[aria-hidden="true"]') || el.closest('[hidden]') !== null;
	const byIds = (ids) => text((ids || '').split(/\s+/).map((id) => {
		const ref = id && document.getElementById(id);
		return ref ? ref.textContent : '';
	}).join(' '));
	// The name a screen reader would announce, close enough for these rules: aria-labelledby,
	// aria-label, then the visible text (with the alt of images inside), then title.
	const accName = (el) => {
		const fromRefs = byIds(el.getAttribute('aria-labelledby'));
		if (fromRefs) return fromRefs;
		const label = text(el.getAttribute('aria-label'));
		if (label) return label;
		let inner = '';
		const walk = (n) => {
			if (n.nodeType === Node.TEXT_NODE) { inner += ' ' + n.nodeValue; return; }
			if (n.nodeType !== Node.ELEMENT_NODE || n.getAttribute('aria-hidden') === 'true') return;
			if (n.tagName === 'IMG') { inner += ' ' + (n.getAttribute('alt') || ''); return; }
			if (n.tagName.toLowerCase() === 'svg') { inner += ' ' + svgName(n); return; }
			n.childNodes.forEach(walk);
		};
		el.childNodes.forEach(walk);
		if (text(inner)) return text(inner);
		if (el.tagName === 'INPUT' && ['submit', 'button', 'reset'].includes(el.type)) {
			return text(el.value) || (el.type === 'submit' ? 'Submit' : el.type === 'reset' ? 'Reset' : '');
		}
		return text(el.getAttribute('title'));
	};
	const svgName = (svg) => {
		const t = [...svg.children].find((c) => c.tagName.toLowerCase() === 'title');
		return byIds(svg.getAttribute('aria-labelledby')) || text(svg.getAttribute('aria-label')) || text(t && t.textContent);
	};

	// The page says what language it is in.
	if (!text(document.documentElement.getAttribute('lang'))) {
		report('html-lang', document.documentElement, 'the html element has no lang');
	}

	// One h1: the page's title for screen-reader users who jump by heading.
	const h1s = [...document.querySelectorAll('h1')].filter((h) => !hidden(h));
	if (h1s.length !== 1) report('one-h1', h1s[1] || null, `${h1s.length} h1 elements, want exactly 1`);
	h1s.forEach((h) => { if (!text(h.textContent)) report('one-h1', h, 'the h1 is empty'); });

	// Landmarks: a header (banner), a nav and one main.
	const landmark = (tag, role) => [...document.querySelectorAll(`${tag}, [role="${role}"]`)].filter((el) => !hidden(el));
	const banners = landmark('header', 'banner').filter((el) => el.getAttribute('role') === 'banner' || !el.closest('main, article, aside, nav, section'));
	if (banners.length === 0) report('landmarks', null, 'no header (banner) landmark');
	if (landmark('nav', 'navigation').length === 0) report('landmarks', null, 'no nav landmark');
	const mains = landmark('main', 'main');
	if (mains.length !== 1) report('landmarks', mains[1] || null, `${mains.length} main landmarks, want exactly 1`);

	// Images and SVGs: a text alternative, or explicitly decorative (alt="" or aria-hidden).
	document.querySelectorAll('img').forEach((img) => {
		if (hidden(img) || img.getAttribute('role') === 'presentation') return;
		if (!img.hasAttribute('alt') && !text(img.getAttribute('aria-label')) && !byIds(img.getAttribute('aria-labelledby'))) {
			report('img-alt', img, 'image without alt');
		}
	});
	document.querySelectorAll('svg').forEach((svg) => {
		if (hidden(svg) || svg.parentElement.closest('svg')) return;
		if (!svgName(svg)) report('svg-alt', svg, 'svg without <title>, aria-label or aria-labelledby');
	});

	// Form controls: a label (label[for], a wrapping label, aria-label(ledby) or title).
	document.querySelectorAll('input, select, textarea').forEach((el) => {
		if (hidden(el)) return;
		if (el.tagName === 'INPUT' && ['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type)) return;
		const labelled = (el.labels && [...el.labels].some((l) => text(l.textContent))) ||
			text(el.getAttribute('aria-label')) || byIds(el.getAttribute('aria-labelledby')) || text(el.getAttribute('title'));
		if (!labelled) report('control-label', el, 'form control without a label');
	});

	// Tables: a caption, header cells, and each header cell says what it heads.
	document.querySelectorAll('table').forEach((table) => {
		if (hidden(table) || table.getAttribute('role') === 'presentation') return;
		if (!table.caption || !text(table.caption.textContent)) report('table-caption', table, 'table without a caption');
		const ths = [...table.querySelectorAll('th')].filter((th) => th.closest('table') === table);
		if (ths.length === 0) report('table-headers', table, 'table without th cells');
		ths.forEach((th) => {
			if (!['col', 'row', 'colgroup', 'rowgroup'].includes(th.getAttribute('scope'))) {
				report('th-scope', th, `th "${text(th.textContent).slice(0, 40)}" without scope col/row`);
			}
		});
	});

	// Links and buttons: a name to announce.
	document.querySelectorAll('a[href], button, input[type="submit"], input[type="button"], input[type="reset"], [role="button"], [role="link"]').forEach((el) => {
		if (hidden(el)) return;
		if (!accName(el)) report('accessible-name', el, `${el.tagName.toLowerCase()} without an accessible name`);
	});

	// Ids are unique (labels, aria references and fragment links depend on it).
	const seen = new Map();
	document.querySelectorAll('[id]').forEach((el) => seen.set(el.id, (seen.get(el.id) || 0) + 1));
	seen.forEach((n, id) => { if (n > 1) report('duplicate-id', null, `id "${id}" is used ${n} times`); });

	return found;
})()
