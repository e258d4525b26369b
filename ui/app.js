// The dashboard's router: the hash names the page.
//   #/                      jobs; #/?state=S&project=P&repo=URL filtered
//   #/jobs/ID               one job
//   #/jobs/ID/log/TARGET    a target's log (TARGET as linux_amd64)
//   #/hosts  #/projects  #/health
import { $ } from './dom.js';
import { initToken, onTokenChange } from './token.js';
import { clearAuthNeeded, showError } from './api.js';
import { renderJobs } from './jobs.js';
import { renderJob } from './job.js';
import { renderLog } from './log.js';
import { renderHosts, renderProjects } from './hosts.js';
import { renderHealth } from './health.js';

let leave = null;

function go(hash) {
	if (location.hash === hash)
		route();
	else
		location.hash = hash;
}

function route() {
	const full = location.hash.replace(/^#/, '') || '/';
	const qi = full.indexOf('?');
	const h = qi < 0 ? full : full.slice(0, qi);
	const params = new URLSearchParams(qi < 0 ? '' : full.slice(qi + 1));
	const main = $('#main');
	if (leave) {
		leave();
		leave = null;
	}
	showError(null);
	clearAuthNeeded();
	let m, nav = 'jobs';
	if (h === '/' || h === '')
		leave = renderJobs(main, params);
	else if ((m = /^\/jobs\/(\d+)$/.exec(h)))
		leave = renderJob(main, m[1], go);
	else if ((m = /^\/jobs\/(\d+)\/log\/([A-Za-z0-9._-]+)$/.exec(h)))
		leave = renderLog(main, m[1], m[2]);
	else if (h === '/hosts')
		leave = renderHosts(main), nav = 'hosts';
	else if (h === '/projects')
		leave = renderProjects(main), nav = 'projects';
	else if (h === '/health')
		leave = renderHealth(main), nav = 'health';
	else {
		main.replaceChildren();
		showError(new Error(`no such page: ${h}`));
		nav = '';
	}
	for (const a of document.querySelectorAll('#nav a'))
		a.classList.toggle('current', a.dataset.nav === nav);
}

initToken();
onTokenChange(route);
window.addEventListener('hashchange', route);
route();
