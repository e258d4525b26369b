// The API token: kept in sessionStorage (this tab only), sent as
// Authorization: Bearer.  The form is in index.html.
import { $ } from './dom.js';

const KEY = 'kiln.token';
const listeners = [];

export function getToken() {
	try {
		return sessionStorage.getItem(KEY) || '';
	} catch (e) {
		return '';
	}
}

function setToken(t) {
	try {
		if (t)
			sessionStorage.setItem(KEY, t);
		else
			sessionStorage.removeItem(KEY);
	} catch (e) { /* storage refused: the token lasts no longer */ }
	showButtons();
	for (const f of listeners)
		f();
}

export function onTokenChange(f) {
	listeners.push(f);
}

export function showTokenForm() {
	$('#token-form').hidden = false;
	$('#token').focus();
}

function showButtons() {
	$('#token-clear').hidden = !getToken();
	$('#token-button').textContent = getToken() ? 'Token \u2713' : 'Token';
}

export function initToken() {
	showButtons();
	$('#token-button').addEventListener('click', () => {
		const f = $('#token-form');
		f.hidden = !f.hidden;
		if (!f.hidden)
			$('#token').focus();
	});
	$('#token-form').addEventListener('submit', ev => {
		ev.preventDefault();
		const v = $('#token').value.trim();
		$('#token').value = '';
		$('#token-form').hidden = true;
		setToken(v);
	});
	$('#token-clear').addEventListener('click', () => setToken(''));
}
