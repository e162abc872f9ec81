// The teaching mode's lesson: ten short sections, English and Simplified Chinese, each linking
// to the live view that shows it. Also the shared teaching-mode labels (`teach.*`) and the
// page's "What you are watching" text (`page.watching.*`).
//
// Keys ending in `.p1`, `.p2` of `lesson.*` and `page.watching.p*` hold HTML (inline math as
// `<span data-tex="...">`, typeset by i18n.js): use them with `data-i18n-html`, never as text.

import { el } from './dom.js';
import { applyTranslations, registerStrings, tr as defaultTr } from './i18n.js';

/** Inline math, typeset by i18n.js's applyTranslations. */
const m = (tex) => `<span class="tex-inline" data-tex="${tex}"></span>`;

/** The fixed names of the live views. */
export const VIEWS = Object.freeze([
  'anatomy',
  'schedule',
  'forward',
  'scrub',
  'interpolate',
  'twopixel',
  'clipping',
]);

/**
 * The lesson's sections in order: id, paragraph count, display formulas (TeX; `after` = the
 * paragraph they follow, 1-based) and the live views they link to.
 */
export const SECTIONS = Object.freeze([
  {
    id: 'point',
    paragraphs: 1,
    formulas: [{ after: 1, tex: String.raw`x \in [-1, 1]^{64 \times 64 \times 3} \subset \mathbb{R}^{12288}` }],
    views: ['interpolate'],
  },
  {
    id: 'noise',
    paragraphs: 1,
    formulas: [
      {
        after: 1,
        tex: String.raw`x_T \sim \mathcal{N}(\mathbf{0}, \mathbf{I}) \quad\Longleftrightarrow\quad x_T^{(i)} \overset{\text{iid}}{\sim} \mathcal{N}(0, 1), \quad i = 1, \dots, 12288`,
      },
    ],
    views: ['forward'],
  },
  {
    id: 'forward',
    paragraphs: 2,
    formulas: [
      {
        after: 1,
        tex: String.raw`x_t = \sqrt{1 - \beta_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon, \qquad \epsilon \sim \mathcal{N}(\mathbf{0}, \mathbf{I})`,
      },
      {
        after: 1,
        tex: String.raw`\beta_t = 10^{-4} + \frac{t - 1}{T - 1}\,\bigl(0.02 - 10^{-4}\bigr), \qquad t = 1, \dots, T = 1000`,
      },
      {
        after: 2,
        tex: String.raw`\alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s=1}^{t} (1 - \beta_s)`,
      },
      {
        after: 2,
        tex: String.raw`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \qquad \epsilon \sim \mathcal{N}(\mathbf{0}, \mathbf{I})`,
      },
    ],
    views: ['forward', 'schedule'],
  },
  {
    id: 'training',
    paragraphs: 1,
    formulas: [
      {
        after: 1,
        tex: String.raw`L_{\text{simple}}(\theta) = \mathbb{E}_{x_0,\, t,\, \epsilon} \Bigl[\, \bigl\lVert \epsilon - \epsilon_\theta\bigl(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon,\ t\bigr) \bigr\rVert^2 \Bigr], \qquad t \sim \mathcal{U}\{1, \dots, T\}`,
      },
    ],
    views: ['anatomy'],
  },
  {
    id: 'reverse',
    paragraphs: 2,
    formulas: [
      {
        after: 1,
        tex: String.raw`x_{t-1} = \frac{1}{\sqrt{\alpha_t}} \Bigl( x_t - \frac{1 - \alpha_t}{\sqrt{1 - \bar\alpha_t}}\, \epsilon_\theta(x_t, t) \Bigr) + \sigma_t z, \qquad z \sim \mathcal{N}(\mathbf{0}, \mathbf{I})`,
      },
      {
        after: 1,
        tex: String.raw`\sigma_t^2 = \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t`,
      },
    ],
    views: ['anatomy'],
  },
  {
    id: 'steps',
    paragraphs: 2,
    formulas: [
      {
        after: 1,
        tex: String.raw`\bar\alpha_{1000} = \prod_{t=1}^{1000} (1 - \beta_t) \approx 4.0 \times 10^{-5}, \qquad \sqrt{\bar\alpha_{1000}} \approx 0.0064`,
      },
      {
        after: 2,
        tex: String.raw`x_{s} = \sqrt{\bar\alpha_{s}}\, \hat x_0 + \sqrt{1 - \bar\alpha_{s}}\, \epsilon_\theta(x_t, t), \qquad s < t`,
      },
    ],
    views: ['schedule'],
  },
  {
    id: 'timestep',
    paragraphs: 2,
    formulas: [
      {
        after: 1,
        tex: String.raw`\operatorname{emb}(t) = \bigl[\sin(\omega_0 t), \dots, \sin(\omega_{h-1} t),\ \cos(\omega_0 t), \dots, \cos(\omega_{h-1} t)\bigr], \qquad \omega_i = 10000^{-i/(h-1)}`,
      },
    ],
    views: ['scrub'],
  },
  {
    id: 'mixture',
    paragraphs: 2,
    formulas: [
      {
        after: 1,
        tex: String.raw`p_\theta(x_0) = \int p(x_T) \prod_{t=1}^{T} p_\theta(x_{t-1} \mid x_t)\, \mathrm{d}x_{1:T}, \qquad p_\theta(x_{t-1} \mid x_t) = \mathcal{N}\bigl(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2 \mathbf{I}\bigr)`,
      },
    ],
    views: ['twopixel'],
  },
  {
    id: 'clipping',
    paragraphs: 1,
    formulas: [
      {
        after: 1,
        tex: String.raw`\hat x_0 = \operatorname{clip}\Bigl( \frac{x_t - \sqrt{1 - \bar\alpha_t}\, \epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}},\ -1,\ 1 \Bigr)`,
      },
      {
        after: 1,
        tex: String.raw`\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\, \beta_t}{1 - \bar\alpha_t}\, \hat x_0 + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, x_t, \qquad x_{t-1} = \tilde\mu_t + \sigma_t z`,
      },
    ],
    views: ['clipping'],
  },
  {
    id: 'seeds',
    paragraphs: 2,
    formulas: [
      {
        after: 2,
        tex: String.raw`x_T(\lambda) = \frac{\sin\bigl((1 - \lambda)\,\phi\bigr)}{\sin \phi}\, x_T^{a} + \frac{\sin(\lambda \phi)}{\sin \phi}\, x_T^{b}, \qquad \cos \phi = \frac{\langle x_T^{a}, x_T^{b} \rangle}{\lVert x_T^{a} \rVert\, \lVert x_T^{b} \rVert}, \quad \lambda \in [0, 1]`,
      },
    ],
    views: ['interpolate'],
  },
]);

const en = {
  // Shared teaching-mode labels.
  'teach.title': 'Teaching mode',
  'teach.lesson': 'Lesson',
  'teach.openView': 'Open the live view →',
  'teach.view.anatomy': 'Step anatomy',
  'teach.view.schedule': 'Noise schedule',
  'teach.view.forward': 'Forward process',
  'teach.view.scrub': 'Timeline',
  'teach.view.interpolate': 'Seed interpolation',
  'teach.view.twopixel': 'Two-pixel world',
  'teach.view.clipping': 'Why clipping',

  // The page's main explanation (HTML).
  'page.watching.title': 'What you are watching',
  'page.watching.p1':
    'Training taught a U-Net to see the noise in a noisy image. Generation starts from pure ' +
    'Gaussian noise <i>x</i><sub>T</sub> and removes a little of the predicted noise at each ' +
    'step <i>t</i> = 1000 … 1, adding a little fresh noise back (DDPM), until an avatar is ' +
    'left: the statue was in the marble all along. DDIM takes bigger, deterministic steps.',
  'page.watching.p2':
    'The same seed, sampler, steps and weights always give the same avatars: the share link ' +
    'carries exactly these. Avatar <i>i</i> of a grid is the avatar of seed + <i>i</i>.',

  // The lesson.
  'lesson.title': 'How a diffusion model draws an avatar',
  'lesson.intro':
    'Ten short steps from “an image is a list of numbers” to the sampler running on this page. ' +
    'Each one ends with a link to the live view that shows it with the real model.',

  'lesson.point.title': 'An image is a point',
  'lesson.point.p1':
    `A 64×64 colour image is 64 · 64 · 3 = 12288 numbers, one per pixel and colour channel, ` +
    `scaled to [−1, 1]. Write them in a row and the image becomes a single point in a ` +
    `12288-dimensional space. Almost every point of that space looks like television static; ` +
    `the avatars the model learned form a small, oddly shaped cloud inside it. Generating an ` +
    `avatar means finding a new point in that cloud.`,

  'lesson.noise.title': 'Noise is sampled from N(0, I)',
  'lesson.noise.p1':
    `Generation starts from noise: each of the 12288 numbers is drawn independently from a ` +
    `standard normal distribution (mean 0, variance 1). Together they are one sample of the ` +
    `12288-dimensional Gaussian ${m(String.raw`\mathcal{N}(\mathbf{0}, \mathbf{I})`)}, the point ` +
    `${m('x_T')} where generation begins. Neighbouring pixels are unrelated, so it looks like ` +
    `coloured static. In so many dimensions such a point almost always lies close to a sphere ` +
    `of radius ${m(String.raw`\sqrt{12288} \approx 111`)}.`,

  'lesson.forward.title': 'The forward process adds noise step by step',
  'lesson.forward.p1':
    `The forward process destroys a training image ${m('x_0')} in ${m('T = 1000')} small steps. ` +
    `Each step shrinks the image slightly and adds a little fresh Gaussian noise; how much is ` +
    `set by ${m(String.raw`\beta_t`)}, which grows linearly from ${m('10^{-4}')} at ` +
    `${m('t = 1')} to ${m('0.02')} at ${m('t = 1000')}.`,
  'lesson.forward.p2':
    `Gaussian noise added to Gaussian noise is again Gaussian, so the steps collapse into one ` +
    `jump: ${m('x_t')} can be drawn straight from ${m('x_0')} using the running product ` +
    `${m(String.raw`\bar\alpha_t`)}. Training uses this jump and never runs the chain. The ` +
    `schedule charts show how ${m(String.raw`\beta_t`)}, ${m(String.raw`\bar\alpha_t`)} and the ` +
    `signal-to-noise ratio change with ${m('t')}.`,

  'lesson.training.title': 'Training the noise predictor',
  'lesson.training.p1':
    `The network ${m(String.raw`\epsilon_\theta`)} is a noise predictor (a U-Net): given a noisy ` +
    `image ${m('x_t')} and the step ${m('t')}, it estimates the noise ${m(String.raw`\epsilon`)} ` +
    `that was mixed in. Each training step picks a training image ${m('x_0')}, a uniformly ` +
    `random step ${m('t')} and fresh noise ${m(String.raw`\epsilon`)}, builds ${m('x_t')} with ` +
    `the jump formula and penalises the squared error of the prediction. This is the paper's ` +
    `simplified loss ${m(String.raw`L_{\text{simple}}`)}: the variational bound (ELBO) with its ` +
    `per-step weights dropped.`,

  'lesson.reverse.title': 'The reverse step removes a little noise',
  'lesson.reverse.p1':
    `Sampling runs the chain backwards, from ${m('t = 1000')} down to 1. Each step subtracts a ` +
    `small, scaled share of the predicted noise, which estimates the mean of ` +
    `${m('x_{t-1}')}, and then adds a little fresh noise ${m(String.raw`\sigma_t z`)} (none at ` +
    `the last step). This page uses ${m(String.raw`\sigma_t^2 = \tilde\beta_t`)}, the variance ` +
    `of the true posterior ${m(String.raw`q(x_{t-1} \mid x_t, x_0)`)}.`,
  'lesson.reverse.p2':
    `Michelangelo is said to have described sculpting like this: “The statue is already in the ` +
    `marble; I just remove what is not needed.” Denoising works the same way: the avatar is, in ` +
    `a sense, already in the noise, and every step chips away a little of what does not belong.`,

  'lesson.steps.title': 'Why T ≈ 1000',
  'lesson.steps.p1':
    `Each reverse step is modelled as a Gaussian, and that is only accurate when the forward ` +
    `step adds very little noise: the smaller ${m(String.raw`\beta_t`)}, the closer the true ` +
    `reverse step ${m(String.raw`q(x_{t-1} \mid x_t)`)} is to a Gaussian. With ` +
    `${m(String.raw`\beta_t \le 0.02`)} it takes about 1000 steps until the image is practically ` +
    `gone: ${m(String.raw`\bar\alpha_{1000} \approx 4 \cdot 10^{-5}`)}, so only about 0.6 % of ` +
    `the original signal is left in ${m('x_T')}, which is as good as pure noise.`,
  'lesson.steps.p2':
    `Training needs all 1000 noise levels, but sampling need not visit every one. DDIM ` +
    `(Song et al. 2021) reuses the same network with a deterministic update that jumps from ` +
    `step ${m('t')} straight to a much earlier step ${m('s')}, where ${m(String.raw`\hat x_0`)} ` +
    `is the network's current guess of the clean image; a few dozen steps often suffice.`,

  'lesson.timestep.title': 'Why the step number is an input',
  'lesson.timestep.p1':
    `One network serves all 1000 steps, yet ${m('x_{900}')} is almost pure noise while ` +
    `${m('x_{10}')} is almost clean: how much noise there is to remove differs enormously. So ` +
    `${m('t')} is a second input. It is encoded as sines and cosines of many frequencies (a ` +
    `sinusoidal embedding, like the Transformer's position encoding) and fed into every ` +
    `residual block of the U-Net.`,
  'lesson.timestep.p2':
    `Scrub the timeline to see what this buys: the early, noisy steps settle the overall ` +
    `layout (pose, hair, colours), while the late steps only refine details.`,

  'lesson.mixture.title': 'Simple Gaussians build a complex distribution',
  'lesson.mixture.p1':
    `Each reverse step is just a Gaussian around a mean that the network computes. But that mean ` +
    `depends on where the chain currently is, so 1000 such steps in a row bend and fold the round ` +
    `blob ${m(String.raw`\mathcal{N}(\mathbf{0}, \mathbf{I})`)} into the shape of the data, much ` +
    `as many small, simple moves can trace a complicated path. The distribution of generated ` +
    `images sums up all those paths:`,
  'lesson.mixture.p2':
    `In 12288 dimensions this cannot be drawn. In a world of two-pixel images, however, every ` +
    `image is a point in the plane, and the two-pixel world shows exactly how the whole cloud ` +
    `of samples flows from one round Gaussian into the shape of the data.`,

  'lesson.clipping.title': 'Why clip the predicted x₀',
  'lesson.clipping.p1':
    `Solving the jump formula for the clean image turns ${m('x_t')} and the predicted noise into ` +
    `a guess ${m(String.raw`\hat x_0`)}. At large ${m('t')} that guess is poor and often lands ` +
    `far outside the pixel range ${m('[-1, 1]')}. The paper's official code therefore clips ` +
    `${m(String.raw`\hat x_0`)} to ${m('[-1, 1]')} and only then forms the step's mean from the ` +
    `posterior ${m(String.raw`q(x_{t-1} \mid x_t, \hat x_0)`)}; without clipping, colours can ` +
    `drift to oversaturated, blown-out values.`,

  'lesson.seeds.title': 'Seeds and interpolation',
  'lesson.seeds.p1':
    `The noise comes from a pseudo-random generator, so a seed fixes every random number of a ` +
    `run: the starting point ${m('x_T')} and the fresh noise of each DDPM step. With the same ` +
    `sampler, steps and weights, the same seed always gives the same avatar; avatar ${m('i')} of ` +
    `a grid uses seed + ${m('i')}.`,
  'lesson.seeds.p2':
    `To blend two avatars, interpolate their starting noises along the sphere where Gaussian ` +
    `noise lives (spherical interpolation, slerp: a straight line would pass through points ` +
    `with too little noise) and denoise each blend with deterministic DDIM. The avatars then ` +
    `morph smoothly from one into the other.`,
};

const zh = {
  'teach.title': '教学模式',
  'teach.lesson': '讲解',
  'teach.openView': '打开对应的实时演示 →',
  'teach.view.anatomy': '单步解剖',
  'teach.view.schedule': '噪声调度',
  'teach.view.forward': '前向过程',
  'teach.view.scrub': '时间轴',
  'teach.view.interpolate': '种子插值',
  'teach.view.twopixel': '两像素世界',
  'teach.view.clipping': '为何裁剪',

  'page.watching.title': '你正在看什么',
  'page.watching.p1':
    '训练让一个 U-Net 学会了看出带噪图像中的噪声。生成从纯高斯噪声 <i>x</i><sub>T</sub> ' +
    '出发，在 <i>t</i> = 1000 … 1 的每一步去掉一点预测出的噪声，再加回一点新的噪声（DDPM），' +
    '直到剩下一个头像：雕像本来就在大理石里。DDIM 则迈更大的、确定性的步子。',
  'page.watching.p2':
    '种子、采样器、步数和权重相同，生成的头像就总是相同：分享链接携带的正是这些信息。' +
    '网格中第 <i>i</i> 个头像，就是种子 seed + <i>i</i> 生成的头像。',

  'lesson.title': '扩散模型如何画出一个头像',
  'lesson.intro':
    '十个小节，从“图像就是一串数字”讲到本页正在运行的采样器。' +
    '每节末尾都有一个链接，打开用真实模型演示该内容的实时视图。',

  'lesson.point.title': '一张图像就是一个点',
  'lesson.point.p1':
    `一张 64×64 的彩色图像由 64 · 64 · 3 = 12288 个数组成：每个像素的每个颜色通道各一个数，` +
    `缩放到 [−1, 1] 区间。把这些数排成一行，图像就成了 12288 维空间中的一个点。这个空间里` +
    `几乎所有的点看上去都像电视雪花；模型学到的头像只是其中一小团形状奇特的点云。` +
    `生成头像，就是在这团点云里找到一个新的点。`,

  'lesson.noise.title': '噪声采样自 N(0, I)',
  'lesson.noise.p1':
    `生成从噪声开始：12288 个数各自独立地从标准正态分布（均值为 0、方差为 1）中采样。` +
    `它们合起来就是 12288 维高斯分布 ${m(String.raw`\mathcal{N}(\mathbf{0}, \mathbf{I})`)} ` +
    `的一个样本，也就是生成的起点 ${m('x_T')}。相邻像素之间毫无关联，所以它看上去是一片` +
    `彩色雪花。在这么高的维度里，这样的点几乎总是落在半径约为 ` +
    `${m(String.raw`\sqrt{12288} \approx 111`)} 的球面附近。`,

  'lesson.forward.title': '前向过程：一步步加噪',
  'lesson.forward.p1':
    `前向过程用 ${m('T = 1000')} 个小步把训练图像 ${m('x_0')} 逐渐破坏掉。每一步都把图像` +
    `略微缩小，再加入一点新的高斯噪声；加多少由 ${m(String.raw`\beta_t`)} 决定，它从 ` +
    `${m('t = 1')} 时的 ${m('10^{-4}')} 线性增长到 ${m('t = 1000')} 时的 ${m('0.02')}。`,
  'lesson.forward.p2':
    `高斯噪声叠加高斯噪声仍是高斯噪声，所以这些小步可以合并成一步：借助累乘 ` +
    `${m(String.raw`\bar\alpha_t`)}，可以直接由 ${m('x_0')} 采样出任意一步的 ${m('x_t')}。` +
    `训练用的正是这个一步到位的公式，无需真正跑完整条链。噪声调度图表展示了 ` +
    `${m(String.raw`\beta_t`)}、${m(String.raw`\bar\alpha_t`)} 和信噪比如何随 ${m('t')} 变化。`,

  'lesson.training.title': '训练噪声预测器',
  'lesson.training.p1':
    `网络 ${m(String.raw`\epsilon_\theta`)} 是一个噪声预测器（U-Net）：给它一张带噪图像 ` +
    `${m('x_t')} 和步数 ${m('t')}，它估计其中混入的噪声 ${m(String.raw`\epsilon`)}。每个训练步` +
    `随机取一张训练图像 ${m('x_0')}、一个均匀分布的步数 ${m('t')} 和一份新噪声 ` +
    `${m(String.raw`\epsilon`)}，用一步到位的公式构造出 ${m('x_t')}，再以预测误差的平方作为` +
    `损失。这就是论文中的简化损失 ${m(String.raw`L_{\text{simple}}`)}：去掉各步权重的变分下界` +
    `（ELBO）。`,

  'lesson.reverse.title': '反向过程：每步去掉一点噪声',
  'lesson.reverse.p1':
    `采样时让这条链倒着走，从 ${m('t = 1000')} 一直走到 1。每一步减去按比例缩放的一小部分` +
    `预测噪声，得到 ${m('x_{t-1}')} 均值的估计，再加回一点新的噪声 ` +
    `${m(String.raw`\sigma_t z`)}（最后一步不加）。本页取 ` +
    `${m(String.raw`\sigma_t^2 = \tilde\beta_t`)}，即真实后验 ` +
    `${m(String.raw`q(x_{t-1} \mid x_t, x_0)`)} 的方差。`,
  'lesson.reverse.p2':
    `据说米开朗基罗这样谈论雕刻：“雕像本来就在大理石里，我只是把多余的部分去掉。”` +
    `去噪也是如此：头像在某种意义上早已藏在噪声之中，每一步只凿去一点不属于它的东西。`,

  'lesson.steps.title': '为什么 T 约为 1000',
  'lesson.steps.p1':
    `反向的每一步都被建模为高斯分布，而这只有在前向每步只加极少噪声时才足够准确：` +
    `${m(String.raw`\beta_t`)} 越小，真实的反向步 ${m(String.raw`q(x_{t-1} \mid x_t)`)} ` +
    `就越接近高斯分布。${m(String.raw`\beta_t \le 0.02`)} 时，大约要 1000 步图像才几乎被噪声` +
    `淹没：${m(String.raw`\bar\alpha_{1000} \approx 4 \cdot 10^{-5}`)}，${m('x_T')} 中只剩约 ` +
    `0.6% 的原始信号，和纯噪声已无分别。`,
  'lesson.steps.p2':
    `训练需要全部 1000 个噪声水平，但采样不必逐一走过。DDIM（Song 等，2021）沿用同一个网络，` +
    `用确定性的更新从第 ${m('t')} 步直接跳到早得多的第 ${m('s')} 步，其中 ` +
    `${m(String.raw`\hat x_0`)} 是网络当前对干净图像的估计；通常几十步就够了。`,

  'lesson.timestep.title': '为什么步数也是输入',
  'lesson.timestep.p1':
    `所有 1000 步共用同一个网络，但 ${m('x_{900}')} 几乎全是噪声，${m('x_{10}')} 却已接近` +
    `干净：需要去除的噪声量相差悬殊。所以 ${m('t')} 是网络的第二个输入：它先被编码成一组` +
    `不同频率的正弦和余弦（正弦时间嵌入，与 Transformer 的位置编码同理），再送入 U-Net 的` +
    `每个残差块。`,
  'lesson.timestep.p2':
    `拖动时间轴就能看出它的作用：前期噪声大的步骤决定整体布局（姿态、发型、配色），` +
    `后期的步骤只修饰细节。`,

  'lesson.mixture.title': '简单的高斯叠出复杂的分布',
  'lesson.mixture.p1':
    `每个反向步只是一个以网络算出的均值为中心的高斯分布。但这个均值取决于链当前所在的点，` +
    `所以把 1000 个这样的步骤串起来，就能把圆滚滚的 ` +
    `${m(String.raw`\mathcal{N}(\mathbf{0}, \mathbf{I})`)} 一点点弯折、揉捏成数据的形状，` +
    `就像许多简单的小步能走出一条复杂的路径。生成图像的分布正是对所有这些路径的汇总：`,
  'lesson.mixture.p2':
    `12288 维的情形没法画出来；但在只有两个像素的图像世界里，每张图像都是平面上的一个点。` +
    `两像素世界的演示能精确地展示整团样本如何从一个圆形的高斯分布流向数据的形状。`,

  'lesson.clipping.title': '为什么要裁剪预测的 x₀',
  'lesson.clipping.p1':
    `把一步到位的公式反过来解，就能由 ${m('x_t')} 和预测的噪声得到干净图像的估计 ` +
    `${m(String.raw`\hat x_0`)}。${m('t')} 较大时这个估计很粗糙，常常远远超出像素范围 ` +
    `${m('[-1, 1]')}。因此论文的官方代码先把 ${m(String.raw`\hat x_0`)} 裁剪到 ` +
    `${m('[-1, 1]')}，再由后验 ${m(String.raw`q(x_{t-1} \mid x_t, \hat x_0)`)} 计算这一步的` +
    `均值；不裁剪的话，颜色容易漂移到过饱和、过曝的数值。`,

  'lesson.seeds.title': '种子与插值',
  'lesson.seeds.p1':
    `噪声来自伪随机数生成器，所以种子决定了一次生成中的全部随机数：起点 ${m('x_T')} 以及 ` +
    `DDPM 每一步新加的噪声。只要采样器、步数和权重相同，同一个种子总是得到同一个头像；` +
    `网格中第 ${m('i')} 个头像使用种子 seed + ${m('i')}。`,
  'lesson.seeds.p2':
    `要融合两个头像，就在高斯噪声所集中的那个球面上，对它们的起始噪声做球面插值` +
    `（slerp；走直线会经过噪声过弱的点），再用确定性的 DDIM 对每个插值点去噪。` +
    `头像便会平滑地从一个渐变为另一个。`,
};

/** Every string of the lesson, the teaching labels and the page's main explanation. */
export const STRINGS = { en, zh };

/** Every TeX source the lesson typesets (display formulas and inline math), for tests. */
export function lessonTex() {
  const out = SECTIONS.flatMap((s) => s.formulas.map((f) => f.tex));
  const inline = /data-tex="([^"]*)"/g;
  for (const table of [en, zh]) {
    for (const text of Object.values(table)) for (const hit of text.matchAll(inline)) out.push(hit[1]);
  }
  return [...new Set(out)];
}

/**
 * Builds the lesson into `container` (replacing its content) and translates it. Each section is
 * `<section data-lesson="id">` with an `<h3 data-i18n>`, paragraphs (`data-i18n-html`), display
 * formulas (`data-tex`, `data-display="block"`) and links `<a href="#view=NAME"
 * data-open-view="NAME">`. A plain click on a link calls `onOpenView(NAME)` instead of following
 * the href (the hash holds the share link); ctrl/cmd/shift/middle clicks keep the browser's
 * behaviour. `tr` (default: i18n.js's) only fills the initial text. Returns the lesson element.
 */
export function renderLesson(container, { tr = defaultTr, onOpenView } = {}) {
  registerStrings(STRINGS);
  const text = (key) => tr(key);
  const root = el('div', { class: 'lesson', 'data-testid': 'lesson' });
  root.append(
    el('p', { class: 'lesson-intro', 'data-i18n': 'lesson.intro' }, [text('lesson.intro')]),
  );
  for (const section of SECTIONS) {
    const key = `lesson.${section.id}`;
    const node = el('section', {
      'data-lesson': section.id,
      class: 'lesson-section',
      'aria-labelledby': `lesson-${section.id}-title`,
    });
    node.append(
      el('h3', { id: `lesson-${section.id}-title`, 'data-i18n': `${key}.title` }, [
        text(`${key}.title`),
      ]),
    );
    for (let p = 1; p <= section.paragraphs; p++) {
      node.append(el('p', { 'data-i18n-html': `${key}.p${p}` }));
      for (const f of section.formulas.filter((f) => f.after === p)) {
        node.append(
          el('div', { class: 'lesson-formula', 'data-tex': f.tex, 'data-display': 'block' }),
        );
      }
    }
    const links = el('p', { class: 'lesson-links' });
    for (const view of section.views) {
      const link = el(
        'a',
        { href: `#view=${view}`, 'data-open-view': view, class: 'lesson-open-view' },
        [
          el('span', { 'data-i18n': 'teach.openView' }, [text('teach.openView')]),
          ' ',
          el('span', { class: 'lesson-view-name', 'data-i18n': `teach.view.${view}` }, [
            text(`teach.view.${view}`),
          ]),
        ],
      );
      link.addEventListener('click', (event) => {
        if (!onOpenView) return;
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) {
          return;
        }
        event.preventDefault();
        onOpenView(view);
      });
      links.append(link, ' ');
    }
    node.append(links);
    root.append(node);
  }
  container.replaceChildren(root);
  applyTranslations(root);
  return root;
}
