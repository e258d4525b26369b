// The #live indicator: "live" while an event stream is connected.
export function setLive(on) {
	const e = document.getElementById('live');
	if (!e)
		return;
	e.textContent = on ? 'live' : '';
	e.className = on ? 'live-on' : 'live-off';
}
