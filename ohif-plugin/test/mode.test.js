import { describe, expect, it, vi } from 'vitest';
import mode, { BASE_MODE, modeConfiguration } from '../src/mode.js';
import { EXTENSION_URL, MODE_ID, PANEL_ID } from '../src/ids.js';

describe('the mode', () => {
  it('derives from OHIF\'s segmentation mode through its own factory', async () => {
    const base = {
      modeInstance: { id: 'seg' },
      modeFactory: vi.fn(function factory({ modeConfiguration: commands }) {
        return { from: this.modeInstance.id, commands };
      }),
    };
    const loadModules = vi.fn(async () => [base]);
    const made = await mode.modeFactory({ modeConfiguration: {}, loadModules });
    expect(loadModules).toHaveBeenCalledWith([BASE_MODE]);
    expect(BASE_MODE).toBe('@ohif/mode-segmentation');
    expect(made.from).toBe('seg'); // called as the base mode's method: its factory reads this.modeInstance
    expect(made.commands).toEqual(modeConfiguration());
  });

  it('names itself, lists our extension by URL and puts our panel first on the right', () => {
    const commands = modeConfiguration();
    expect(commands.id).toEqual({ $set: MODE_ID });
    expect(commands.routeName).toEqual({ $set: 'awesomme' });
    expect(Object.keys(commands.extensions.$merge)).toEqual([EXTENSION_URL]);
    expect(EXTENSION_URL).toBe('/viewer-plugins/awesomme-extension.mjs');
    expect(commands.routes[0].layoutInstance.props.rightPanels).toEqual({ $unshift: [PANEL_ID] });
  });
});
