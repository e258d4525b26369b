// The log page: one <pre>, filled incrementally.  Text that arrives is
// queued; each animation frame appends at most BATCH characters of it as
// text nodes and coloured spans, so a 16 MiB log scrolls in over a few
// seconds while the tab stays responsive, and nothing shown is ever
// rendered again.  Each batch of whole lines goes into a block of its own
// (span.chunk, display: block) inside the pre: the browser then lays out
// only the new block, where one growing block of text would be laid out
// again whole each frame.
import { el, clear, targetUrl } from './dom.js';
import { authHeaders, authNeeded, ApiError, showError } from './api.js';
import { AnsiState, ansiPieces } from './ansi.js';
import { parseEvents } from './sse.js';
import { setLive } from './live.js';

const BATCH = 128 * 1024;

class LogView {
	constructor(pre) {
		this.pre = pre;
		this.queue = [];
		this.queued = 0;
		this.ansi = new AnsiState();
		this.frame = 0;
		this.stopped = false;
		this.open = null;	// the block the next text continues
	}

	push(text) {
		if (!text)
			return;
		this.queue.push(text);
		this.queued += text.length;
		if (!this.frame)
			this.frame = requestAnimationFrame(() => this.drain());
	}

	// Up to max characters, ending after a newline when one is in
	// reach (a block must not split a line).
	take(max) {
		let out = this.takeRaw(max);
		const nl = out.lastIndexOf('\n');
		if (nl >= 0 && nl < out.length - 1 && this.queued > 0) {
			this.queue.unshift(out.slice(nl + 1));
			this.queued += out.length - nl - 1;
			out = out.slice(0, nl + 1);
		}
		return out;
	}

	takeRaw(max) {
		let out = '';
		while (this.queue.length && out.length < max) {
			let t = this.queue[0];
			const room = max - out.length;
			if (t.length > room) {
				let n = room;
				// Never split a surrogate pair.
				const c = t.charCodeAt(n - 1);
				if (c >= 0xd800 && c <= 0xdbff)
					n--;
				if (n <= 0)
					break;
				this.queue[0] = t.slice(n);
				t = t.slice(0, n);
			} else
				this.queue.shift();
			out += t;
		}
		this.queued -= out.length;
		return out;
	}

	drain() {
		this.frame = 0;
		if (this.stopped)
			return;
		const text = this.take(BATCH);
		const pre = this.pre;
		const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
		const frag = document.createDocumentFragment();
		for (const [t, cls] of ansiPieces(text, this.ansi)) {
			if (cls)
				frag.appendChild(el('span', { class: cls }, t));
			else
				frag.appendChild(document.createTextNode(t));
		}
		// A line still open (a live build's last, partial line)
		// continues in the same block.
		if (!this.open) {
			this.open = el('span', { class: 'chunk' });
			pre.appendChild(this.open);
		}
		this.open.appendChild(frag);
		if (text.endsWith('\n'))
			this.open = null;
		if (atBottom)
			pre.scrollTop = pre.scrollHeight;
		if (this.queued > 0)
			this.frame = requestAnimationFrame(() => this.drain());
		else if (this.onIdle)
			this.onIdle();
	}

	// Start again from nothing (a stream that dropped is read again
	// from its start).
	reset() {
		this.queue = [];
		this.queued = 0;
		this.ansi = new AnsiState();
		this.open = null;
		clear(this.pre);
	}

	stop() {
		this.stopped = true;
		if (this.frame)
			cancelAnimationFrame(this.frame);
	}
}

export function renderLog(main, id, tUrl) {
	const target = tUrl.replaceAll('_', '/');
	const base = `/v1/jobs/${encodeURIComponent(id)}/targets/` +
	    `${encodeURIComponent(targetUrl(tUrl))}/log`;
	const pre = el('pre', { id: 'log' });
	const status = el('span', { id: 'log-status' }, 'connecting');
	clear(main);
	main.appendChild(el('section', { id: 'log-page' },
	    el('div', { class: 'log-head' },
		el('h1', null, el('a', { href: `#/jobs/${id}` }, `Job ${id}`),
		    ` \u00b7 ${target}`),
		status,
		el('a', { id: 'raw-log', href: base + '?raw=1' }, 'raw log')),
	    pre));
	const view = new LogView(pre);
	let ctl = null, timer = 0, ended = false, gone = false;

	const setStatus = s => {
		status.textContent = s;
		status.className = s;
	};
	const finish = () => {
		ended = true;
		setLive(false);
		// Shown once the queue is drawn, so "ended" means all shown.
		if (view.queued === 0 && !view.frame)
			setStatus('ended');
		else
			view.onIdle = () => setStatus('ended');
	};

	async function follow() {
		ctl = new AbortController();
		let res;
		try {
			res = await fetch(base + '?follow=1', { signal: ctl.signal,
			    cache: 'no-store',
			    headers: authHeaders({ Accept: 'text/event-stream' }) });
		} catch (e) {
			return again();
		}
		if (!res.ok) {
			if (res.status === 401)
				authNeeded();
			let detail = '';
			try {
				const p = await res.json();
				detail = p.detail || p.title || '';
			} catch (e) { /* none */ }
			setStatus('error');
			showError(new ApiError(res.status, `${res.status}`, detail));
			return;
		}
		setStatus('following');
		const ct = res.headers.get('Content-Type') || '';
		try {
			if (ct.startsWith('text/event-stream')) {
				setLive(true);
				await parseEvents(res, { lastId: null }, ev => {
					if (ev.event === 'log') {
						const s = JSON.parse(ev.data);
						if (typeof s === 'string')
							view.push(s);
					} else if (ev.event === 'end')
						ended = true;
				}, () => {}, ctl.signal);
			} else {
				// A kilnd without the event-stream form: the plain
				// chunked follow, read as it comes.
				const reader = res.body.getReader();
				const dec = new TextDecoder('utf-8');
				for (;;) {
					const { value, done } = await reader.read();
					if (done)
						break;
					view.push(dec.decode(value, { stream: true }));
				}
				view.push(dec.decode());
				ended = true;
			}
		} catch (e) {
			if (gone)
				return;
		}
		if (ended)
			finish();
		else
			again();
	}

	function again() {
		if (gone)
			return;
		setLive(false);
		setStatus('reconnecting');
		timer = setTimeout(() => {
			view.reset();
			follow();
		}, 3000);
	}

	follow();
	return () => {
		gone = true;
		clearTimeout(timer);
		if (ctl)
			ctl.abort();
		view.stop();
		setLive(false);
	};
}
