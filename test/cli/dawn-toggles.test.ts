/**
 * Dawn toggles (LoadOptions.dawnToggles, FLASHMEM_DAWN_TOGGLES): the runtime and the tools turn
 * them into the same `webgpu` instance flags, and refuse names that would smuggle in other flags.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dawnToggleFlags as runtimeFlags, parseDawnToggles } from '../../runtime-template/device.js';
import { dawnToggleFlags as toolFlags } from '../../compiler/target/webgpu.js';

describe('Dawn toggles', () => {
  const saved = process.env.FLASHMEM_DAWN_TOGGLES;
  afterEach(() => {
    if (saved === undefined) delete process.env.FLASHMEM_DAWN_TOGGLES;
    else process.env.FLASHMEM_DAWN_TOGGLES = saved;
  });

  it('enable names, disable -names, nothing for none; the tools read FLASHMEM_DAWN_TOGGLES like the runtime', () => {
    const list = parseDawnToggles(' allow_unsafe_apis, vulkan_enable_f16_on_nvidia,-use_dxc ,');
    expect(list).toEqual(['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', '-use_dxc']);
    const flags = ['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia', 'disable-dawn-features=use_dxc'];
    expect(runtimeFlags(list)).toEqual(flags);
    process.env.FLASHMEM_DAWN_TOGGLES = 'allow_unsafe_apis,vulkan_enable_f16_on_nvidia,-use_dxc';
    expect(toolFlags()).toEqual(flags);
    expect(toolFlags([])).toEqual([]);
    expect(runtimeFlags(parseDawnToggles(undefined))).toEqual([]);
  });

  it('refuses names with separators (FM_WEBGPU in the runtime, FM_BAD_ARGUMENT in the tools)', () => {
    expect(() => runtimeFlags(['a,backend=null'])).toThrow(/FM_WEBGPU/);
    expect(() => toolFlags(['x=y'])).toThrow(/FM_BAD_ARGUMENT/);
  });
});
