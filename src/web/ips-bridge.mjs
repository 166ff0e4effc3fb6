// Enhances the staff pages with the NHS.UK frontend's JavaScript. The pages
// work without it; the CSP allows no inline script, so the classes the
// frontend's page template sets inline are set here.
import { initAll } from '/static/nhsuk-frontend.min.js'

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')
initAll()
