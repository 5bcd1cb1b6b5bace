// Timestamps as Ollama writes them: RFC 3339 in local time with the zone offset (docs/daemon.md, "API conventions").

function pad(n: number, w = 2): string {
  return String(Math.trunc(Math.abs(n))).padStart(w, "0");
}

export function formatTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const zone = off === 0 ? "Z" : `${sign}${pad(off / 60)}:${pad(off % 60)}`;
  const ms = d.getMilliseconds();
  const frac = ms ? "." + String(ms).padStart(3, "0").replace(/0+$/, "") : "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${frac}${zone}`;
}
