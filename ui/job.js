// One job (#/jobs/ID): facts, the target matrix, artifacts and signed
// files with the commands that verify them, cancel and retry.
import { el, clear, table, fmtTime, fmtDuration, fmtSize, ENDED,
    targetUrl } from './dom.js';
import { apiFetch, getJSON, postJSON, caller, scopeAtLeast, showError,
    clearAuthNeeded } from './api.js';
import { getToken } from './token.js';
import { EventStream } from './sse.js';
import { setLive } from './live.js';

const POLL_MS = 5000;

function yesNo(v) {
	return v === true ? 'yes' : v === false ? 'no' : '';
}

function facts(job) {
	const dl = el('dl', { class: 'facts' });
	const add = (k, v, cls) => {
		if (v === undefined || v === null || v === '')
			return;
		dl.appendChild(el('dt', null, k));
		dl.appendChild(el('dd', { class: cls }, v));
	};
	add('Repository', job.repo, 'mono repo');
	add('Ref', job.ref, 'mono ref');
	add('Commit', job.commit, 'mono commit');
	add('Project', job.project, 'project');
	add('Submitted by', job.submitted_by);
	if (job.retry_of)
		add('Retry of', el('a', { href: `#/jobs/${Number(job.retry_of)}` },
		    `job ${Number(job.retry_of)}`));
	add('Created', fmtTime(job.created_at), 'created');
	add('Started', fmtTime(job.started_at), 'started');
	add('Finished', fmtTime(job.finished_at), 'finished');
	add('Duration', fmtDuration(job.started_at, job.finished_at), 'duration');
	add('Priority', job.priority);
	add('Signed', yesNo(job.signed));
	add('Error', job.error, 'error');
	return dl;
}

function targetsTable(job) {
	// On a phone: target, state, duration and log; the rest are
	// hide-narrow (the job page and the log tell them).
	const opt = text => ({ text, class: 'hide-narrow' });
	const t = table('targets', ['Target', 'State', opt('Attempt'),
	    'Duration', opt('Toolchain'), opt('Cached'), opt('Reproducible'),
	    opt('Host'), opt('Error'), 'Log']);
	const id = Number(job.id);
	for (const x of Array.isArray(job.targets) ? job.targets : []) {
		let repro = yesNo(x.reproducible);
		if (x.reproducible === false && Array.isArray(x.differences))
			repro += ` (${x.differences.length}${x.more_differences ?
			    '+' : ''} differences)`;
		t.tbody.appendChild(el('tr', { data: { target: x.target },
		    class: `state-${x.state}` },
		    el('td', { class: 'mono target' }, x.target),
		    el('td', { class: `state state-${x.state}` }, x.state),
		    el('td', { class: 'attempt hide-narrow' }, x.attempt ?? ''),
		    el('td', { class: 'duration' },
			fmtDuration(x.started_at, x.finished_at)),
		    el('td', { class: 'toolchain mono hide-narrow' }, x.toolchain || ''),
		    el('td', { class: 'cached hide-narrow' }, yesNo(x.cached) +
			(x.cached_from ? ` (job ${x.cached_from})` : '')),
		    el('td', { class: 'reproducible hide-narrow' }, repro),
		    el('td', { class: 'host mono hide-narrow' }, x.host || ''),
		    el('td', { class: 'error hide-narrow' }, x.error || ''),
		    el('td', null, el('a', { class: 'log-link',
			href: `#/jobs/${id}/log/${targetUrl(x.target)}` }, 'log'))));
	}
	return t.box;
}

// Shell commands that fetch the files and check them with the standard
// tools, trusting nothing between the user and the farm but its key.
// The artifacts go to TARGET/NAME (linux_amd64/hello), as SHA256SUMS
// names them.
function verifyText(id, list) {
	const origin = location.origin;
	const base = `${origin}/v1/jobs/${id}`;
	const auth = getToken() ? ' -H "Authorization: Bearer $KILN_TOKEN"' : '';
	const lines = [
		`mkdir -p kiln-job-${id} && cd kiln-job-${id}`,
		'# The public key the signature verifies with:',
		`curl -fsS${auth} -o kiln.pub ${origin}/v1/pubkey`,
		'# The signed list of checksums and its signature:',
		`curl -fsS${auth} -O ${base}/SHA256SUMS`,
		`curl -fsS${auth} -O ${base}/SHA256SUMS.minisig`,
		'minisign -Vm SHA256SUMS -p kiln.pub',
		'# The artifacts, each as TARGET/NAME:',
		`curl -fsS${auth} ${base}/artifacts | jq -r '.artifacts[].url' |`,
		`  while read -r u; do f=\${u#/v1/jobs/${id}/artifacts/}; ` +
		    'mkdir -p "${f%/*}"',
		`    curl -fsS${auth} -o "$f" "${origin}$u"; done`,
		'sha256sum -c SHA256SUMS',
	];
	if (list.provenance)
		lines.push('# Provenance (in-toto):',
		    `curl -fsS${auth} -O ${base}/provenance.intoto.jsonl`);
	lines.push('# All of the above with the kiln client (it pins the key ' +
	    'on first use):',
	    `KILN_URL=${origin} kiln download ${id} --verify`);
	return lines.join('\n');
}

// A link the browser would follow without the token: with one held,
// fetch the file with it and hand the browser the bytes instead.
async function withToken(ev) {
	if (!getToken())
		return;
	ev.preventDefault();
	const a = ev.currentTarget;
	try {
		const res = await apiFetch(a.getAttribute('href'), { cache: 'no-store' });
		const url = URL.createObjectURL(await res.blob());
		const tmp = el('a', { download: a.getAttribute('download') || '' });
		tmp.href = url;
		document.body.appendChild(tmp);
		tmp.click();
		tmp.remove();
		setTimeout(() => URL.revokeObjectURL(url), 60000);
	} catch (e) {
		showError(e);
	}
}

function artifactsPart(id, list) {
	const part = el('div', { id: 'artifacts-part' });
	const arts = Array.isArray(list.artifacts) ? list.artifacts : [];
	const t = table('artifacts', ['File', 'Size', 'SHA-256', '']);
	for (const a of arts) {
		const file = `${a.target}/${a.name}`;
		const href = a.url || `/v1/jobs/${id}/artifacts/` +
		    `${encodeURIComponent(targetUrl(a.target))}/` +
		    encodeURIComponent(a.name);
		t.tbody.appendChild(el('tr', { data: { file } },
		    el('td', { class: 'mono name' }, file),
		    el('td', { class: 'size', title: `${a.size} bytes` },
			fmtSize(a.size)),
		    el('td', { class: 'sha256' }, a.sha256 || ''),
		    el('td', null, el('a', { class: 'download', href,
			download: a.name, onclick: withToken }, 'download'))));
	}
	part.appendChild(el('h2', null, 'Artifacts'));
	if (arts.length === 0) {
		part.appendChild(el('p', { class: 'empty' }, 'None yet.'));
		t.box.hidden = true;
	}
	part.appendChild(t.box);
	const signed = el('p', { class: 'signed' });
	const link = (id2, href, text) => href ?
	    [el('a', { id: id2, href, download: text, onclick: withToken }, text),
	    ' '] : null;
	signed.append(...[
	    link('sums', list.sums, 'SHA256SUMS'),
	    link('minisig', list.signature, 'SHA256SUMS.minisig'),
	    link('provenance', list.provenance, 'provenance.intoto.jsonl'),
	].flat().filter(Boolean));
	if (list.sums || list.signature) {
		part.appendChild(el('h2', null, 'Signed files'));
		part.appendChild(signed);
		part.appendChild(el('h3', null, 'Verify'));
		part.appendChild(el('pre', { id: 'verify-commands' },
		    verifyText(id, list)));
	}
	return part;
}

export function renderJob(main, id, go) {
	id = Number(id);
	const section = el('section', { id: 'job', data: { job: id } },
	    el('h1', null, `Job ${id}`));
	clear(main);
	main.appendChild(section);
	let stream = null, poll = 0, gone = false, busy = false, again = false;
	let who = { scope: 'none' };

	async function act(what) {
		try {
			const r = await postJSON(`/v1/jobs/${id}/${what}`, {});
			showError(null);
			if (what === 'retry' && r && Number.isInteger(r.id))
				go(`#/jobs/${r.id}`);
			else
				refresh();
		} catch (e) {
			showError(e);
		}
	}

	function actions(job) {
		const box = el('div', { class: 'actions' });
		if (!getToken() || !scopeAtLeast(who.scope, 'submit'))
			return box;
		if (!ENDED.has(job.state))
			box.appendChild(el('button', { id: 'cancel', type: 'button',
			    class: 'danger', onclick: ev => {
				ev.target.disabled = true;
				act('cancel');
			    } }, 'Cancel'));
		else
			box.appendChild(el('button', { id: 'retry', type: 'button',
			    onclick: ev => {
				ev.target.disabled = true;
				act('retry');
			    } }, 'Retry'));
		return box;
	}

	async function refresh() {
		if (busy) {
			again = true;
			return;
		}
		busy = true;
		try {
			const job = await getJSON(`/v1/jobs/${id}`);
			let list = null;
			try {
				list = await getJSON(`/v1/jobs/${id}/artifacts`);
			} catch (e) { /* none yet, or not ours to read */ }
			if (gone)
				return;
			clearAuthNeeded();
			showError(null);
			section.replaceChildren(...[
			    el('h1', null, `Job ${id} `,
				el('span', { class: `job-state state-${job.state}` },
				    job.state)),
			    actions(job),
			    facts(job),
			    el('h2', null, 'Targets'),
			    targetsTable(job),
			    list ? artifactsPart(id, list) : null].filter(Boolean));
			if (ENDED.has(job.state) && poll) {
				clearInterval(poll);
				poll = 0;
			}
		} catch (e) {
			if (!gone)
				showError(e);
		} finally {
			busy = false;
			if (again && !gone) {
				again = false;
				refresh();
			}
		}
	}

	caller().then(c => {
		who = c;
		refresh();
	});
	stream = new EventStream(`/v1/events?job=${id}`, {
		onOpen: () => setLive(true),
		onDown: () => setLive(false),
		onMissing: () => {
			setLive(false);
			poll = setInterval(refresh, POLL_MS);
		},
		onEvent: () => refresh(),
	});
	return () => {
		gone = true;
		clearInterval(poll);
		stream.close();
		setLive(false);
	};
}
