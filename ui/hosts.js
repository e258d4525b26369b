// The farm's hosts (#/hosts) and the configured projects (#/projects).
import { el, clear, table, fmtTime } from './dom.js';
import { getJSON, showError, clearAuthNeeded, ApiError } from './api.js';

export function renderHosts(main) {
	const t = table('hosts', ['Host', 'Alive', 'Version', 'Slots', 'Running',
	    'Toolchains', 'Seen', 'Started', 'URL']);
	clear(main);
	main.appendChild(el('section', { id: 'hosts-page' },
	    el('h1', null, 'Hosts'), t.box));
	let gone = false;
	getJSON('/v1/hosts').then(r => {
		if (gone)
			return;
		clearAuthNeeded();
		for (const h of Array.isArray(r.hosts) ? r.hosts : []) {
			const tc = Array.isArray(h.toolchains) ? h.toolchains.join(', ') :
			    h.toolchains && typeof h.toolchains === 'object' ?
			    Object.keys(h.toolchains).join(', ') : '';
			t.tbody.appendChild(el('tr', { data: { host: h.name },
			    class: h.alive ? 'state-succeeded' : 'state-failed' },
			    el('td', { class: 'mono' }, h.name),
			    el('td', { class: `state ${h.alive ? 'state-succeeded' :
				'state-failed'}` }, h.alive ? 'alive' : 'silent'),
			    el('td', null, h.version || ''),
			    el('td', { class: 'num' }, h.slots ?? ''),
			    el('td', { class: 'num' }, h.running ?? ''),
			    el('td', { class: 'mono' }, tc),
			    el('td', null, fmtTime(h.seen_at)),
			    el('td', null, fmtTime(h.started_at)),
			    el('td', { class: 'mono' }, h.base_url || '')));
		}
	}).catch(e => {
		if (!gone)
			showError(e);
	});
	return () => { gone = true; };
}

export function renderProjects(main) {
	const t = table('projects', ['Project', 'Repository', 'Protected refs',
	    'Registry']);
	const note = el('p', { class: 'hint', hidden: true },
	    'This kilnd lists project names only (/v1/info).');
	clear(main);
	main.appendChild(el('section', { id: 'projects-page' },
	    el('h1', null, 'Projects'), t.box, note));
	let gone = false;
	const add = p => t.tbody.appendChild(el('tr', { data: { project: p.name } },
	    el('td', null, p.name),
	    el('td', { class: 'mono' }, p.repo || ''),
	    el('td', { class: 'mono' }, Array.isArray(p.protected_refs) ?
		p.protected_refs.join(', ') : ''),
	    el('td', { class: 'mono' }, p.registry || '')));
	getJSON('/v1/projects').then(r => {
		if (gone)
			return;
		clearAuthNeeded();
		for (const p of Array.isArray(r.projects) ? r.projects : [])
			add(p);
	}).catch(async e => {
		if (gone)
			return;
		if (!(e instanceof ApiError) || e.status !== 404) {
			showError(e);
			return;
		}
		// A kilnd without GET /v1/projects: the names /v1/info has.
		try {
			const info = await getJSON('/v1/info');
			for (const name of Array.isArray(info.projects) ?
			    info.projects : [])
				add({ name: String(name) });
			note.hidden = false;
		} catch (e2) {
			showError(e2);
		}
	});
	return () => { gone = true; };
}
