// The AWESOMME mode: OHIF's segmentation mode (brush, eraser, threshold, scissors, segments) with our panel first
// on the right and our extension listed by URL, so that the viewer imports it when the mode opens.
import { EXTENSION_URL, MODE_ID, PANEL_ID, ROUTE_NAME, VERSION } from './ids.js';

export const BASE_MODE = '@ohif/mode-segmentation';

/** immutability-helper commands applied by the segmentation mode's own factory onto its mode instance. */
export function modeConfiguration() {
  return {
    id: { $set: MODE_ID },
    routeName: { $set: ROUTE_NAME },
    displayName: { $set: 'AWESOMME' },
    extensions: { $merge: { [EXTENSION_URL]: `^${VERSION}` } },
    routes: { 0: { layoutInstance: { props: { rightPanels: { $unshift: [PANEL_ID] } } } } },
  };
}

const mode = {
  id: MODE_ID,
  async modeFactory({ loadModules }) {
    const [base] = await loadModules([BASE_MODE]);
    return base.modeFactory.call(base, { modeConfiguration: modeConfiguration() });
  },
};

export default mode;
