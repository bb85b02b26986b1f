// Owns the dashboard page served at `GET /` of the admin server: one self-contained HTML document
// (inline CSS and JS, no external resources, no build step) that follows `/events`.
export const DASHBOARD_HTML = '<!doctype html><title>corelb</title><p>dashboard</p>';
