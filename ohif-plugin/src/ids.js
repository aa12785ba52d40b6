// Names the viewer, the server and the tests agree on.
export const EXTENSION_ID = '@awesomme/extension-viewer';
export const MODE_ID = '@awesomme/mode-viewer';
export const ROUTE_NAME = 'awesomme';
export const PANEL_NAME = 'segmentation';
export const PANEL_ID = `${EXTENSION_ID}.panelModule.${PANEL_NAME}`;
// A mode's extensions are import()ed by key at mode entry: a runtime extension is named by its URL.
export const EXTENSION_URL = '/viewer-plugins/awesomme-extension.mjs';
export const VERSION = '0.1.0';
