/** The web page's one stylesheet, served as /admin/style.css (the Content-Security-Policy allows no inline style). */
export const STYLE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c2330;background:#f4f6f9}
header{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.2rem;background:#1f3a5f;color:#fff}
header .brand{font-weight:600;font-size:1.05rem}
header nav a{color:#dfe8f5;margin-right:1rem;text-decoration:none}
header nav a.here{color:#fff;border-bottom:2px solid #8fb8ec}
header .who{margin-left:auto;display:flex;gap:.6rem;align-items:center;font-size:.9rem}
header .who form{margin:0}
main{padding:1rem 1.2rem;max-width:1400px}
h1{font-size:1.3rem;margin:.2rem 0 .8rem}
h2{font-size:1.1rem;margin:1.2rem 0 .5rem}
.alerts{display:flex;gap:.8rem;margin-bottom:1rem;flex-wrap:wrap}
.alerts a{flex:1;min-width:180px;padding:.6rem .8rem;border-radius:6px;background:#fff;border:1px solid #d6dce5;text-decoration:none;color:inherit}
.alerts a b{display:block;font-size:1.5rem}
.alerts a.hot{border-color:#d9822b;background:#fff6ec}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d6dce5}
th,td{padding:.35rem .55rem;border-bottom:1px solid #e4e8ee;text-align:left;vertical-align:top}
th{background:#eef2f7;font-weight:600;white-space:nowrap}
th a{color:inherit}
td.num{text-align:right}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
.on{color:#1d7a3a;font-weight:600}
.off{color:#8a94a3}
.takeout{color:#9a5b00;font-weight:600}
.locked{color:#b3261e;font-weight:600}
.muted{color:#6b7585}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:.8rem;padding:.6rem;background:#fff;border:1px solid #d6dce5;border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:#4a5568}
input,select,button{font:inherit;padding:.25rem .4rem}
button{cursor:pointer;border:1px solid #1f3a5f;background:#1f3a5f;color:#fff;border-radius:4px}
button.secondary{background:#fff;color:#1f3a5f}
button.danger{background:#b3261e;border-color:#b3261e}
form.inline{display:inline-flex;gap:.3rem;align-items:center;margin:0 .3rem .2rem 0}
form.inline input[type=number]{width:4.5rem}
.pager{display:flex;gap:1rem;align-items:center;margin:.6rem 0}
.notice{padding:.5rem .8rem;border-radius:6px;background:#e9f6ec;border:1px solid #9fd3ad;margin-bottom:.8rem}
.error{padding:.6rem .9rem;border-radius:6px;background:#fdecea;border:1px solid #f1aeb5;margin-bottom:.8rem}
.login{max-width:340px;margin:8vh auto;background:#fff;padding:1.4rem;border:1px solid #d6dce5;border-radius:8px}
.login label{display:block;margin:.6rem 0 .2rem}
.login input{width:100%}
.login button{margin-top:1rem;width:100%;padding:.45rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;background:#fff;border:1px solid #d6dce5;padding:.8rem;border-radius:6px}
dl.facts dt{font-weight:600;color:#4a5568}
dl.facts dd{margin:0}
`;
