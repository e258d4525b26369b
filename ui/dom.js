// Small DOM helpers.  Every piece of text from the server goes in with
// textContent or a text node, never as markup: repository names, errors
// and logs come from builds and are hostile.

// el('td', {class: 'state', data: {job: 12}}, 'running', child...)
export function el(tag, attrs, ...children) {
	const e = document.createElement(tag);
	if (attrs) {
		for (const [k, v] of Object.entries(attrs)) {
			if (v === undefined || v === null || v === false)
				continue;
			if (k === 'class')
				e.className = v;
			else if (k === 'data')
				for (const [dk, dv] of Object.entries(v))
					e.dataset[dk] = String(dv);
			else if (k === 'text')
				e.textContent = String(v);
			else if (k === 'href')
				e.setAttribute('href', safeHref(v));
			else if (k.startsWith('on') && typeof v === 'function')
				e.addEventListener(k.slice(2), v);
			else
				e.setAttribute(k, v === true ? '' : String(v));
		}
	}
	append(e, children);
	return e;
}

function append(e, children) {
	for (const c of children) {
		if (c === undefined || c === null || c === false)
			continue;
		if (Array.isArray(c))
			append(e, c);
		else if (c instanceof Node)
			e.appendChild(c);
		else
			e.appendChild(document.createTextNode(String(c)));
	}
}

// Links go to this server's API or pages only: a javascript: or
// data: URL from a hostile field must never become a link.
export function safeHref(v) {
	const s = String(v);
	if (s.startsWith('#') || (s.startsWith('/') && !s.startsWith('//')))
		return s;
	try {
		const u = new URL(s, location.href);
		if (u.protocol === 'http:' || u.protocol === 'https:')
			return u.href;
	} catch (e) { /* fall through */ }
	return '#';
}

export function clear(e) {
	while (e.firstChild)
		e.removeChild(e.firstChild);
}

export function $(sel) {
	return document.querySelector(sel);
}

// A table inside a horizontally scrolling box (phones).
export function table(id, headers) {
	const tbody = el('tbody');
	const t = el('table', { id },
	    el('thead', null, el('tr', null, headers.map(h =>
		typeof h === 'string' ? el('th', null, h) :
		el('th', { class: h.class }, h.text)))),
	    tbody);
	return { box: el('div', { class: 'scroll' }, t), table: t, tbody };
}

export function fmtTime(s) {
	if (!s)
		return '';
	const d = new Date(s);
	if (isNaN(d))
		return String(s);
	return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtDuration(start, end) {
	if (!start)
		return '';
	const a = Date.parse(start), b = end ? Date.parse(end) : Date.now();
	if (isNaN(a) || isNaN(b))
		return '';
	let s = Math.max(0, Math.round((b - a) / 1000));
	if (s < 60)
		return s + 's';
	const m = Math.floor(s / 60);
	s %= 60;
	if (m < 60)
		return m + 'm' + String(s).padStart(2, '0') + 's';
	return Math.floor(m / 60) + 'h' + String(m % 60).padStart(2, '0') + 'm';
}

export function fmtSize(n) {
	if (typeof n !== 'number')
		return '';
	if (n < 1024)
		return n + ' B';
	const u = ['KiB', 'MiB', 'GiB', 'TiB'];
	let v = n / 1024, i = 0;
	while (v >= 1024 && i < u.length - 1) {
		v /= 1024;
		i++;
	}
	return v.toFixed(v < 10 ? 1 : 0) + ' ' + u[i];
}

export const ENDED = new Set(['succeeded', 'failed', 'canceled']);

// A target name as the API's URLs write it: linux/arm/v7 -> linux_arm_v7.
export function targetUrl(t) {
	return String(t).replaceAll('/', '_');
}
