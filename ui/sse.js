// text/event-stream over fetch() and a ReadableStream: EventSource can
// send no Authorization header.  parseEvents() reads one response;
// EventStream reconnects with Last-Event-ID after the server's retry.
import { authHeaders, authNeeded } from './api.js';

// Bounds: a line (or an event's data) longer than this from a broken
// server ends the connection rather than the tab's memory.
const MAX_LINE = 16 * 1024 * 1024;

// Read res's body as an event stream; calls onEvent({event, data, id})
// per event and onRetry(ms) per retry field.  Resolves at the end of the
// body.  state.lastId carries the last id across calls.
export async function parseEvents(res, state, onEvent, onRetry, signal) {
	const reader = res.body.getReader();
	const dec = new TextDecoder('utf-8');
	let buf = '', event = '', data = [], dataLen = 0, first = true;
	const dispatch = () => {
		if (data.length > 0 || event) {
			onEvent({ event: event || 'message', data: data.join('\n'),
			    id: state.lastId });
		}
		event = '';
		data = [];
		dataLen = 0;
	};
	const line = l => {
		if (l === '') {
			dispatch();
			return;
		}
		if (l[0] === ':')
			return;		// a comment: keep-alive
		const c = l.indexOf(':');
		const field = c < 0 ? l : l.slice(0, c);
		let value = c < 0 ? '' : l.slice(c + 1);
		if (value[0] === ' ')
			value = value.slice(1);
		if (field === 'event')
			event = value;
		else if (field === 'data') {
			data.push(value);
			dataLen += value.length;
			if (dataLen > MAX_LINE)
				throw new Error('an event too large');
		} else if (field === 'id' && !value.includes('\0'))
			state.lastId = value;
		else if (field === 'retry' && /^\d+$/.test(value))
			onRetry(Number(value));
	};
	try {
		for (;;) {
			const { value, done } = await reader.read();
			if (done)
				break;
			buf += dec.decode(value, { stream: true });
			if (first) {
				if (buf.charCodeAt(0) === 0xfeff)
					buf = buf.slice(1);
				first = false;
			}
			let start = 0;
			for (;;) {
				const m = /\r\n|\r|\n/g;
				m.lastIndex = start;
				const r = m.exec(buf);
				if (!r)
					break;
				// A lone \r at the end may be half of \r\n.
				if (r[0] === '\r' && r.index === buf.length - 1)
					break;
				line(buf.slice(start, r.index));
				start = r.index + r[0].length;
			}
			buf = buf.slice(start);
			if (buf.length > MAX_LINE)
				throw new Error('a line too long in the event stream');
			if (signal && signal.aborted)
				break;
		}
	} finally {
		reader.cancel().catch(() => {});
	}
}

// A reconnecting event stream.  opts: onEvent(ev), onOpen(), onDown(),
// onMissing() (404/405: the server has no such stream; no retries).
export class EventStream {
	constructor(url, opts) {
		this.url = url;
		this.opts = opts;
		this.state = { lastId: null };
		this.retry = 3000;
		this.ctl = null;
		this.closed = false;
		this.timer = null;
		this.run();
	}

	async run() {
		if (this.closed)
			return;
		this.ctl = new AbortController();
		const headers = { Accept: 'text/event-stream' };
		if (this.state.lastId !== null)
			headers['Last-Event-ID'] = this.state.lastId;
		let res;
		try {
			res = await fetch(this.url, { headers: authHeaders(headers),
			    cache: 'no-store', signal: this.ctl.signal });
		} catch (e) {
			return this.again();
		}
		if (res.status === 404 || res.status === 405) {
			this.closed = true;
			if (this.opts.onMissing)
				this.opts.onMissing();
			return;
		}
		if (res.status === 401) {
			authNeeded();
			return this.again(15000);
		}
		const ct = res.headers.get('Content-Type') || '';
		if (!res.ok || !ct.startsWith('text/event-stream')) {
			res.body && res.body.cancel().catch(() => {});
			if (res.ok && this.opts.onMissing) {
				this.closed = true;
				this.opts.onMissing();
				return;
			}
			return this.again();
		}
		if (this.opts.onOpen)
			this.opts.onOpen();
		try {
			await parseEvents(res, this.state, ev => {
				if (!this.closed)
					this.opts.onEvent(ev);
			}, ms => { this.retry = Math.min(Math.max(ms, 500), 60000); },
			    this.ctl.signal);
		} catch (e) { /* dropped: reconnect below */ }
		this.again();
	}

	again(ms) {
		if (this.closed)
			return;
		if (this.opts.onDown)
			this.opts.onDown();
		clearTimeout(this.timer);
		this.timer = setTimeout(() => this.run(), ms || this.retry);
	}

	close() {
		this.closed = true;
		clearTimeout(this.timer);
		if (this.ctl)
			this.ctl.abort();
	}
}
